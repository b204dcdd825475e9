//! `meridian-load`: a zipfian mix of GET and SET on keys `key:%012d` (as `bench/compare.py`
//! loads them), from many connections that each send `--pipeline` commands and wait for
//! their replies before sending more, as application clients do. Prints the rate achieved.
//!
//!     meridian-load --port 6379 --keys 1000000 --requests 400000 --clients 50 --pipeline 1
//!
//! It stops by itself after `--requests` commands (or at the first failure, with exit 1).

mod reply;
mod zipf;

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zipf::Zipf;

/// The load's settings, from the command line.
struct Settings {
    port: u16,
    keys: u64,
    requests: u64,
    clients: u64,
    pipeline: u64,
    get_share: f64,
    exponent: f64,
    value_size: usize,
    seed: u64,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Settings, String> {
    let mut s = Settings { port: 6379, keys: 1_000_000, requests: 400_000, clients: 50, pipeline: 1, get_share: 0.9, exponent: 0.99, value_size: 100, seed: 7 };
    while let Some(name) = args.next() {
        let value = args.next().ok_or(format!("{name} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{name} {value}: {e}");
        match name.as_str() {
            "--port" => s.port = value.parse().map_err(|e| bad(&e))?,
            "--keys" => s.keys = value.parse().map_err(|e| bad(&e))?,
            "--requests" => s.requests = value.parse().map_err(|e| bad(&e))?,
            "--clients" => s.clients = value.parse().map_err(|e| bad(&e))?,
            "--pipeline" => s.pipeline = value.parse().map_err(|e| bad(&e))?,
            "--get-share" => s.get_share = value.parse().map_err(|e| bad(&e))?,
            "--zipf" => s.exponent = value.parse().map_err(|e| bad(&e))?,
            "--value-size" => s.value_size = value.parse().map_err(|e| bad(&e))?,
            "--seed" => s.seed = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if s.keys == 0 || s.clients == 0 || s.pipeline == 0 || s.requests < s.clients * s.pipeline {
        return Err("--keys, --clients and --pipeline must be positive, and --requests at least clients x pipeline".into());
    }
    Ok(s)
}

/// Appends one GET or SET of a zipfian key to `out`.
fn command(out: &mut Vec<u8>, rng: &mut StdRng, zipf: &Zipf, s: &Settings, value: &[u8]) {
    let key = format!("key:{:012}", zipf.key_id(rng.gen()));
    if rng.gen::<f64>() < s.get_share {
        out.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
    } else {
        out.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n", key.len(), value.len()).as_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

/// One connection's share of the load: `requests` commands in rounds of `pipeline`.
async fn client(index: u64, requests: u64, s: Arc<Settings>, zipf: Arc<Zipf>) -> Result<(), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).await.map_err(|e| format!("connecting to port {}: {e}", s.port))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(s.seed.wrapping_mul(1_000_003).wrapping_add(index));
    let value = vec![b'z'; s.value_size];
    let (mut out, mut input) = (Vec::new(), Vec::new());
    let mut sent = 0;
    while sent < requests {
        let round = s.pipeline.min(requests - sent);
        out.clear();
        (0..round).for_each(|_| command(&mut out, &mut rng, &zipf, &s, &value));
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut answered = 0;
        while answered < round {
            match reply::first(&input)? {
                Some(reply::Reply::Ok(len)) => {
                    input.drain(..len);
                    answered += 1;
                }
                Some(reply::Reply::Error(len)) => return Err(format!("the server answered {:?}", String::from_utf8_lossy(&input[..len]).trim_end())),
                None => {
                    let mut chunk = [0u8; 16 * 1024];
                    let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("the server closed the connection".into());
                    }
                    input.extend_from_slice(&chunk[..n]);
                }
            }
        }
        sent += round;
    }
    Ok(())
}

fn main() {
    let settings = match parse(std::env::args().skip(1)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("meridian-load: {e}");
            std::process::exit(2);
        }
    };
    let zipf = Arc::new(Zipf::new(settings.keys, settings.exponent));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        let per_client = settings.requests / settings.clients;
        let tasks: Vec<_> = (0..settings.clients).map(|i| tokio::spawn(client(i, per_client, settings.clone(), zipf.clone()))).collect();
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok::<u64, String>(per_client * settings.clients)
    });
    match outcome {
        Ok(done) => {
            let seconds = started.elapsed().as_secs_f64();
            println!("requests={done} seconds={seconds:.3} requests_per_sec={:.0}", done as f64 / seconds);
        }
        Err(e) => {
            eprintln!("meridian-load: {e}");
            std::process::exit(1);
        }
    }
}
