//! `meridian lab`: three regions of Meridian on loopback, with the WAN emulator between them
//! (default round trips 40, 80 and 120 ms), for watching geo replication and conflict
//! resolution without any setup. Each region is a real `meridian` process (this same binary)
//! with its own data dir, certificates from `meridian certs`, and peers that are the
//! emulator's proxies. A console on standard input cuts, heals and slows links and kills and
//! restarts regions; Ctrl-C (or SIGTERM) stops everything.

mod options;
pub mod wan;

use crate::certs::{self, CertError};
use meridian_wan::Wan;
use options::{Console, LabOptions, LabUsage, CONSOLE_HELP, REGIONS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// How long a region may take to answer PING after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long stopping regions may take before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the lab could not run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Bad arguments.
    #[error("{0}\nusage: meridian lab [--dir DIR] [--port 7001] [--rtt-ms 40,80,120] [--jitter-ms 0] [--loss 0] [--topology mesh|ring]")]
    Usage(#[from] LabUsage),
    /// Bad arguments to `meridian wan`.
    #[error("{0}\nusage: meridian wan --listen ADDR --target HOST:PORT [--delay-ms 0] [--jitter-ms 0] [--loss 0]")]
    WanUsage(LabUsage),
    /// The cluster's certificates could not be made.
    #[error(transparent)]
    Certs(#[from] CertError),
    /// A file, socket or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A region did not come up.
    #[error("region {region} did not start within {READY_TIMEOUT:?}; its log: {log}")]
    NotReady {
        /// The region.
        region: &'static str,
        /// Its log file.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// Runs `meridian lab` with the arguments after `lab`, until Ctrl-C or `quit`.
pub fn run(args: &[String]) -> Result<(), LabError> {
    let options = LabOptions::parse(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(io("starting the runtime"))?;
    let outcome = runtime.block_on(async {
        let mut lab = Lab::create(options).await?;
        let outcome = lab.serve().await;
        lab.stop_all().await;
        lab.clean_up();
        outcome
    });
    // The console's read of standard input may still be blocked in a runtime thread; waiting
    // for it would keep the lab alive after Ctrl-C.
    runtime.shutdown_background();
    outcome
}

/// One region: its ports, data dir and process.
struct Region {
    name: &'static str,
    port: u16,
    geo_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// The running lab.
struct Lab {
    options: LabOptions,
    root: PathBuf,
    temporary: bool,
    regions: Vec<Region>,
    wan: Wan,
}

impl Lab {
    /// Prepares directories, certificates and the emulator, and starts every region.
    async fn create(options: LabOptions) -> Result<Lab, LabError> {
        let (root, temporary) = match &options.dir {
            Some(dir) => (dir.clone(), false),
            None => (std::env::temp_dir().join(format!("meridian-lab-{}", std::process::id())), true),
        };
        let certs_dir = root.join("certs");
        let names: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
        if !names.iter().all(|n| certs_dir.join(format!("{n}.pem")).exists()) || !certs_dir.join("ca.pem").exists() {
            certs::generate(&certs_dir, &names, "meridian")?;
        }
        let mut regions = Vec::new();
        for (i, name) in REGIONS.into_iter().enumerate() {
            let (port, geo_port) = match options.port {
                0 => (free_port(false)?, free_port(true)?),
                base => (base + i as u16, base + 100 + i as u16),
            };
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
            regions.push(Region { name, port, geo_port, dir, child: None });
        }
        let targets: Vec<SocketAddr> = regions.iter().map(|r| SocketAddr::from(([127, 0, 0, 1], r.geo_port))).collect();
        let wan = Wan::mesh(&targets, |i, j| options.link(i, j), rand::random()).await.map_err(io("starting the WAN emulator"))?;
        let mut lab = Lab { options, root, temporary, regions, wan };
        for i in 0..lab.regions.len() {
            if let Err(e) = lab.start_region(i).await {
                lab.stop_all().await;
                lab.clean_up();
                return Err(e);
            }
        }
        Ok(lab)
    }

    /// The flags region `i` runs with: its peers are the emulator's proxies toward the others,
    /// in ring order after it.
    fn region_args(&self, i: usize) -> Vec<String> {
        let region = &self.regions[i];
        let certs = self.root.join("certs");
        let path = |p: PathBuf| p.display().to_string();
        let mut args = vec![
            "--port".into(),
            region.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            path(region.dir.clone()),
            "--logfile".into(),
            path(region.dir.join("meridian.log")),
            "--node-name".into(),
            region.name.into(),
            "--geo-port".into(),
            region.geo_port.to_string(),
            "--topology".into(),
            self.options.topology.clone(),
            "--tls-cert".into(),
            path(certs.join(format!("{}.pem", region.name))),
            "--tls-key".into(),
            path(certs.join(format!("{}.key", region.name))),
            "--tls-ca".into(),
            path(certs.join("ca.pem")),
        ];
        let n = self.regions.len();
        for k in 1..n {
            args.extend(["--peer".into(), self.wan.addr(i, (i + k) % n).to_string()]);
        }
        args
    }

    /// Starts region `i` and waits until it answers PING.
    async fn start_region(&mut self, i: usize) -> Result<(), LabError> {
        let exe = std::env::current_exe().map_err(io("finding the meridian binary"))?;
        let child = Command::new(exe)
            .args(self.region_args(i))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io(format!("starting region {}", self.regions[i].name)))?;
        let region = &mut self.regions[i];
        region.child = Some(child);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if answers_ping(region.port).await {
                return Ok(());
            }
            if let Some(Ok(Some(_))) = region.child.as_mut().map(Child::try_wait) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(LabError::NotReady { region: region.name, log: region.dir.join("meridian.log").display().to_string() })
    }

    /// Prints where the regions are, then follows the console and signals until told to stop.
    async fn serve(&mut self) -> Result<(), LabError> {
        self.print_banner();
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io("handling SIGTERM"))?;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut console_open = true;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = terminate.recv() => return Ok(()),
                _ = tick.tick() => self.report_exits(),
                line = lines.next_line(), if console_open => match line {
                    Ok(Some(line)) => match Console::parse(&line) {
                        Ok(Some(Console::Quit)) => return Ok(()),
                        Ok(Some(command)) => self.obey(command).await,
                        Ok(None) => {}
                        Err(e) => println!("{e}"),
                    },
                    // No console (stdin closed or not a terminal): run until a signal.
                    _ => console_open = false,
                },
            }
        }
    }

    fn print_banner(&self) {
        let [ab, ac, bc] = self.options.rtt.map(|d| d.as_millis());
        println!("Meridian lab: 3 regions ({}) on loopback behind a WAN emulator", self.options.topology);
        println!("  links: a-b {ab} ms round trip, a-c {ac} ms, b-c {bc} ms; jitter {} ms, loss {}%", self.options.jitter.as_millis(), self.options.loss * 100.0);
        let removal = if self.temporary { " (removed when the lab stops)" } else { "" };
        println!("  data and logs: {}{removal}", self.root.display());
        println!();
        for r in &self.regions {
            println!("  region {}: 127.0.0.1:{}    redis-cli -p {}", r.name, r.port, r.port);
        }
        let [a, b, c] = [0, 1, 2].map(|i| self.regions[i].port);
        println!();
        println!("Try: redis-cli -p {a} INCRBY hits 5; redis-cli -p {c} INCRBY hits 7; sleep 0.2; redis-cli -p {b} GET hits");
        println!("{CONSOLE_HELP}; Ctrl-C stops the lab.");
    }

    /// Carries out a console command and says what happened.
    async fn obey(&mut self, command: Console) {
        let name = |i: usize| REGIONS[i];
        match command {
            Console::Cut(a, b) => {
                self.wan.cut(a, b);
                println!("link {}-{} cut", name(a), name(b));
            }
            Console::Heal(Some((a, b))) => {
                self.wan.heal(a, b);
                println!("link {}-{} healed", name(a), name(b));
            }
            Console::Heal(None) => {
                self.wan.heal_all();
                println!("every link healed");
            }
            Console::Isolate(a) => {
                self.wan.isolate(a);
                println!("region {} cut off from the others", name(a));
            }
            Console::Delay(a, b, rtt) => {
                let model = meridian_wan::LinkModel { delay: rtt / 2, ..self.wan.model(a, b) };
                self.wan.set_model(a, b, model);
                println!("link {}-{} now {} ms round trip", name(a), name(b), rtt.as_millis());
            }
            Console::Kill(a) => match self.regions[a].child.take() {
                Some(mut child) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    println!("region {} killed (SIGKILL); `start {}` restarts it", name(a), name(a));
                }
                None => println!("region {} is not running", name(a)),
            },
            Console::Start(a) if self.regions[a].child.is_some() => println!("region {} is already running", name(a)),
            Console::Start(a) => match self.start_region(a).await {
                Ok(()) => println!("region {} started on 127.0.0.1:{}", name(a), self.regions[a].port),
                Err(e) => println!("{e}"),
            },
            Console::Status => println!("{}", self.status()),
            Console::Help => println!("{CONSOLE_HELP}"),
            Console::Quit => {}
        }
    }

    fn status(&self) -> String {
        let mut out = String::new();
        for r in &self.regions {
            let state = if r.child.is_some() { "running" } else { "stopped" };
            out += &format!("region {}: 127.0.0.1:{} {state}\n", r.name, r.port);
        }
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let state = if self.wan.is_up(a, b) { "up" } else { "cut" };
            let rtt = self.wan.model(a, b).delay * 2;
            out += &format!("link {}-{}: {state}, {} ms round trip\n", REGIONS[a], REGIONS[b], rtt.as_millis());
        }
        out.trim_end().to_string()
    }

    /// Notices regions that exited on their own.
    fn report_exits(&mut self) {
        for r in &mut self.regions {
            if let Some(Ok(Some(status))) = r.child.as_mut().map(Child::try_wait) {
                r.child = None;
                println!("region {} exited ({status}); its log is {}; `start {}` restarts it", r.name, r.dir.join("meridian.log").display(), r.name);
            }
        }
    }

    /// Stops every region: SIGTERM (a clean shutdown), then SIGKILL for any still running.
    async fn stop_all(&mut self) {
        for child in self.regions.iter().filter_map(|r| r.child.as_ref()) {
            // SAFETY: kill(2) on a child this process started and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        for region in &mut self.regions {
            if let Some(mut child) = region.child.take() {
                while matches!(child.try_wait(), Ok(None)) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        println!("lab stopped");
    }

    fn clean_up(&self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// True if a Redis server on `port` answers PING.
async fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok()
        && tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply)).await.is_ok_and(|r| r.is_ok())
        && &reply == b"+PONG\r\n"
}

/// A free port on loopback (UDP or TCP), for `--port 0`.
fn free_port(udp: bool) -> Result<u16, LabError> {
    let port = if udp { std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()) } else { std::net::TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()) };
    Ok(port.map_err(io("finding a free port"))?.port())
}
