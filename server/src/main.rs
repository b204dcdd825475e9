//! `meridian`: an active-active, geo-replicated, Redis-compatible server.
//!
//! Usage, like `redis-server`: `meridian [config-file] [--option value ...]`.

mod alloc;
mod certs;
mod clients;
mod clock;
mod cold_sweep;
mod commands;
mod config;
mod conflicts;
mod durable;
mod glob;
mod info;
mod keyspace;
mod lab;
mod logging;
mod net;
mod node;
mod pop_queue;
mod pubsub;
mod reclaim;
mod replication;
mod resp;
mod session;
mod shared;
mod stats;
mod watch;

use config::Config;
use node::{Node, NodeError};
use shared::Shared;
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator {};

const USAGE: &str = "Usage: meridian [/path/to/meridian.conf] [--option value ...]
       meridian certs DIR --nodes a,b,c [--cluster-id ID]
       meridian lab [--dir DIR] [--port 7001] [--rtt-ms 40,80,120] [--jitter-ms 0] [--loss 0] [--topology mesh|ring]
       meridian wan --listen ADDR --target HOST:PORT [--delay-ms 0] [--jitter-ms 0] [--loss 0]
       meridian check-config [/path/to/meridian.conf] [--option value ...]
       meridian salvage [/path/to/meridian.conf] [--option value ...]   (a damaged flash tier)
       meridian --version

Options are redis.conf names (port, bind, requirepass, dir, maxmemory, loglevel, ...), read
from the config file, then MERIDIAN_<OPTION> environment variables, then flags.
Examples:
       meridian                          (listens on 127.0.0.1:6379)
       meridian --port 7000 --dir /var/lib/meridian
       meridian /etc/meridian.conf --loglevel verbose";

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error("cannot open log file: {0}")]
    Log(std::io::Error),
    #[error("cannot open data dir: {0}")]
    Node(#[from] NodeError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Listen(#[from] net::StartError),
    #[error(transparent)]
    Replication(#[from] replication::GeoStartError),
    #[error("cannot recover from the flash tier: {0}")]
    Recover(#[from] durable::DurableError),
    #[error("cannot start the flash tier's housekeeping: {0}")]
    Housekeeping(std::io::Error),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-v" | "--version") => {
            println!("meridian {} (Redis {} compatible)", env!("CARGO_PKG_VERSION"), info::REDIS_VERSION);
            return ExitCode::SUCCESS;
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("certs") => {
            return match certs::run(&args[1..]) {
                Ok(done) => {
                    println!("{done}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meridian certs: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Some("lab") => return report("lab", lab::run(&args[1..])),
        Some("wan") => return report("wan", lab::wan::run(&args[1..])),
        Some("salvage") => {
            return match durable::salvage::run(&args[1..]) {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meridian salvage: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Some("check-config") => {
            return match Config::from_args(&args[1..], std::env::vars()) {
                Ok(_) => {
                    println!("configuration OK");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meridian: configuration error: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    let config = match Config::from_args(&args, std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("meridian: configuration error: {e}\n\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meridian: {e}");
            ExitCode::from(1)
        }
    }
}

/// The exit of a subcommand: success, or its error on standard error and status 1.
fn report(command: &str, outcome: Result<(), lab::LabError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meridian {command}: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(config: Config) -> Result<(), StartupError> {
    let log_control = logging::init(config.loglevel, &config.logfile).map_err(StartupError::Log)?;
    for variable in &config.ignored_env {
        tracing::warn!("environment variable {variable} names no option; ignored");
    }
    if config.test_clock_offset_ms != 0 {
        clock::set_offset_ms(config.test_clock_offset_ms);
        tracing::warn!(offset_ms = config.test_clock_offset_ms, "test-clock-offset-ms: this node's clock is shifted on purpose");
    }
    let store = durable::open_store(&config).map_err(NodeError::from)?;
    let durable = match (&store, config.appendonly) {
        (Some(store), true) => Some(Arc::new(durable::Durable::new(store.clone(), config.appendfsync).map_err(NodeError::from)?)),
        _ => None,
    };
    let cold = store.map(|store| keyspace::ColdTier::new(store, durable.clone()));
    let node = Node::open(&config.dir, config.op_log_bytes(), durable)?;
    raise_fd_limit(config.maxclients + 64);
    let runtime = runtime(worker_threads(config.threads)).map_err(StartupError::Runtime)?;
    let node_id = node.id();
    let shared = Arc::new(Shared::new(config, node, cold, log_control));
    durable::recover::start(&shared)?;
    durable::start(&shared).map_err(StartupError::Housekeeping)?;
    reclaim::start(&shared).map_err(StartupError::Housekeeping)?;
    let served = runtime.block_on(async {
        replication::start(shared.clone()).await?;
        net::run(shared.clone(), |started| {
            for addr in &started.addrs {
                tracing::info!("Meridian {} node {node_id} listening on {addr}", env!("CARGO_PKG_VERSION"));
            }
            tracing::info!("Ready to accept connections tcp");
        })
        .await?;
        Ok::<(), StartupError>(())
    });
    if let Some(durable) = shared.node.durable() {
        durable.sync_in_background();
    }
    served
}

/// Worker threads for `threads` (0: automatic). Automatic leaves one core free, as Redis
/// advises for its I/O threads: the kernel's network stack, and the replication and storage
/// threads, need a core too. docs/benchmarks.md shows the effect on a 2-core machine.
fn worker_threads(configured: u64) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
        n => n as usize,
    }
}

/// One worker: a single-threaded event loop, like Redis's, without work-stealing overhead.
/// More: tokio's work-stealing pool.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.thread_name("meridian-worker").enable_all().build()
}

/// Raises the open-file limit toward `wanted` (clients need one descriptor each), as Redis does
/// for `maxclients`.
fn raise_fd_limit(wanted: u64) {
    // SAFETY: getrlimit/setrlimit only read and write the struct they are given.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("cannot raise the open file limit to {wanted}");
            }
        }
    }
}
