//! `meridian wan`: one emulated WAN link as a standalone process, for the docker-compose lab
//! (a proxy container between two regions' geo ports, with the delay, jitter and loss given).

use super::options::{loss, number};
use super::{io, LabError, LabUsage};
use meridian_wan::{LinkModel, Proxy};
use std::net::SocketAddr;
use std::time::Duration;

/// How long to keep retrying a target name that does not resolve yet (its container is
/// still starting).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(120);

/// What one link proxy is told.
#[derive(Debug, Clone, PartialEq)]
pub struct WanOptions {
    /// Where dialers send.
    pub listen: SocketAddr,
    /// `host:port` of the geo port behind the link.
    pub target: String,
    /// Delay, jitter and loss each way.
    pub model: LinkModel,
}

impl WanOptions {
    /// Parses `--listen ADDR --target HOST:PORT [--delay-ms N] [--jitter-ms N] [--loss P]`.
    pub fn parse(args: &[String]) -> Result<WanOptions, LabUsage> {
        let (mut listen, mut target) = (None, None);
        let mut model = LinkModel::delay_ms(0);
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let value = rest.next().ok_or_else(|| LabUsage::Bad(format!("{flag} needs a value")))?;
            match flag.as_str() {
                "--listen" => listen = Some(value.parse().map_err(|_| LabUsage::Bad(format!("--listen: '{value}' is not an address like 0.0.0.0:7100")))?),
                "--target" => target = Some(value.clone()),
                "--delay-ms" => model.delay = Duration::from_millis(number(flag, value)?),
                "--jitter-ms" => model.jitter = Duration::from_millis(number(flag, value)?),
                "--loss" => model.loss = loss(value)?,
                other => return Err(LabUsage::Bad(format!("unknown argument '{other}'"))),
            }
        }
        Ok(WanOptions { listen: listen.ok_or_else(|| LabUsage::Bad("missing --listen".into()))?, target: target.ok_or_else(|| LabUsage::Bad("missing --target".into()))?, model })
    }
}

/// Runs `meridian wan` with the arguments after `wan`, until SIGTERM or Ctrl-C.
pub fn run(args: &[String]) -> Result<(), LabError> {
    let options = WanOptions::parse(args).map_err(LabError::WanUsage)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(io("starting the runtime"))?;
    runtime.block_on(async {
        let target = resolve(&options.target).await?;
        let proxy = Proxy::start(options.listen, target, options.model, rand::random()).await.map_err(io(format!("listening on {}", options.listen)))?;
        println!(
            "wan link {} -> {} ({}): delay {} ms, jitter {} ms, loss {}%",
            proxy.addr(),
            options.target,
            target,
            options.model.delay.as_millis(),
            options.model.jitter.as_millis(),
            options.model.loss * 100.0
        );
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io("handling SIGTERM"))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}

/// Resolves `target`, retrying while its name is not known yet.
async fn resolve(target: &str) -> Result<SocketAddr, LabError> {
    let deadline = tokio::time::Instant::now() + RESOLVE_TIMEOUT;
    loop {
        match tokio::net::lookup_host(target).await.map(|mut addrs| addrs.next()) {
            Ok(Some(addr)) => return Ok(addr),
            result if tokio::time::Instant::now() >= deadline => {
                let reason = result.err().map_or("no address".to_string(), |e| e.to_string());
                return Err(LabError::Io { what: format!("resolving --target {target}"), source: std::io::Error::other(reason) });
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::options::words as args;
    use super::*;

    #[test]
    fn flags_and_their_errors() {
        let o = WanOptions::parse(&args("--listen 0.0.0.0:7100 --target eu:7100 --delay-ms 40 --jitter-ms 5 --loss 0.01")).unwrap();
        assert_eq!(o.target, "eu:7100");
        assert_eq!(o.model, LinkModel { delay: Duration::from_millis(40), jitter: Duration::from_millis(5), loss: 0.01 });
        let err = |s: &str| WanOptions::parse(&args(s)).unwrap_err().to_string();
        assert_eq!(err("--target eu:7100"), "missing --listen");
        assert_eq!(err("--listen eu --target x"), "--listen: 'eu' is not an address like 0.0.0.0:7100");
        assert_eq!(err("--listen 0.0.0.0:1 --target x --loss 3"), "--loss is a share between 0 and 1");
        assert_eq!(err("--listen 0.0.0.0:1 --target x --delay-ms"), "--delay-ms needs a value");
    }
}
