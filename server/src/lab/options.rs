//! `meridian lab` arguments and console commands: parsing only, no I/O.

use meridian_wan::LinkModel;
use std::path::PathBuf;
use std::time::Duration;

/// The regions' names, in order.
pub const REGIONS: [&str; 3] = ["a", "b", "c"];

/// How to run the lab.
#[derive(Debug, Clone, PartialEq)]
pub struct LabOptions {
    /// Where the regions keep their data and logs; `None`: a temporary directory, removed
    /// when the lab stops.
    pub dir: Option<PathBuf>,
    /// Client port of region a; b and c take the next two. 0: any free ports.
    pub port: u16,
    /// Round-trip times a-b, a-c, b-c.
    pub rtt: [Duration; 3],
    /// Jitter of each one-way delay.
    pub jitter: Duration,
    /// Share of datagrams lost on every link, 0.0 to 1.0.
    pub loss: f64,
    /// `mesh` or `ring`.
    pub topology: String,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions { dir: None, port: 7001, rtt: [40, 80, 120].map(Duration::from_millis), jitter: Duration::ZERO, loss: 0.0, topology: "mesh".into() }
    }
}

/// Why the lab's arguments or a console command were refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LabUsage {
    /// The message says what is wrong.
    #[error("{0}")]
    Bad(String),
}

fn bad(message: impl Into<String>) -> LabUsage {
    LabUsage::Bad(message.into())
}

/// `value` of `flag` as a number.
pub(super) fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, LabUsage> {
    value.parse().map_err(|_| bad(format!("{flag}: '{value}' is not a number")))
}

/// A `--loss` value: a share of datagrams between 0 and 1.
pub(super) fn loss(value: &str) -> Result<f64, LabUsage> {
    let loss: f64 = number("--loss", value)?;
    if !(0.0..=1.0).contains(&loss) {
        return Err(bad("--loss is a share between 0 and 1"));
    }
    Ok(loss)
}

impl LabOptions {
    /// Parses the arguments after `lab`.
    pub fn parse(args: &[String]) -> Result<LabOptions, LabUsage> {
        let mut options = LabOptions::default();
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let mut value = || rest.next().ok_or_else(|| bad(format!("{flag} needs a value")));
            match flag.as_str() {
                "--dir" => options.dir = Some(PathBuf::from(value()?)),
                "--port" => {
                    let port: u16 = number(flag, value()?)?;
                    if port > 65535 - 102 {
                        return Err(bad("--port: region c's geo port would pass 65535"));
                    }
                    options.port = port;
                }
                "--rtt-ms" => {
                    let values: Vec<u64> = value()?.split(',').map(|v| number(flag, v.trim())).collect::<Result<_, _>>()?;
                    let [ab, ac, bc] = values[..] else { return Err(bad("--rtt-ms takes three values: a-b,a-c,b-c")) };
                    options.rtt = [ab, ac, bc].map(Duration::from_millis);
                }
                "--jitter-ms" => options.jitter = Duration::from_millis(number(flag, value()?)?),
                "--loss" => options.loss = loss(value()?)?,
                "--topology" => {
                    let topology = value()?;
                    if topology != "mesh" && topology != "ring" {
                        return Err(bad("--topology is mesh or ring"));
                    }
                    options.topology = topology.clone();
                }
                other => return Err(bad(format!("unknown argument '{other}'"))),
            }
        }
        Ok(options)
    }

    /// The link between regions `i < j`, each way: half the round trip.
    pub fn link(&self, i: usize, j: usize) -> LinkModel {
        let rtt = match (i.min(j), i.max(j)) {
            (0, 1) => self.rtt[0],
            (0, 2) => self.rtt[1],
            _ => self.rtt[2],
        };
        LinkModel { delay: rtt / 2, jitter: self.jitter, loss: self.loss }
    }
}

/// A line typed at the lab's console.
#[derive(Debug, Clone, PartialEq)]
pub enum Console {
    /// `cut A B`: partition two regions.
    Cut(usize, usize),
    /// `heal A B`, or `heal` for every link.
    Heal(Option<(usize, usize)>),
    /// `isolate A`: cut every link of a region.
    Isolate(usize),
    /// `delay A B MS`: change a link's round-trip time.
    Delay(usize, usize, Duration),
    /// `kill A`: SIGKILL a region.
    Kill(usize),
    /// `start A`: start a stopped region again.
    Start(usize),
    /// `status`: the regions and links.
    Status,
    /// `help`.
    Help,
    /// `quit`: stop the lab.
    Quit,
}

/// What the console accepts.
pub const CONSOLE_HELP: &str = "commands: cut A B | heal [A B] | isolate A | delay A B RTT_MS | kill A | start A | status | quit";

fn region(name: &str) -> Result<usize, LabUsage> {
    REGIONS.iter().position(|r| r.eq_ignore_ascii_case(name)).ok_or_else(|| bad(format!("no region '{name}' (regions: a, b, c)")))
}

fn pair(a: &str, b: &str) -> Result<(usize, usize), LabUsage> {
    let (a, b) = (region(a)?, region(b)?);
    if a == b {
        return Err(bad("a link joins two different regions"));
    }
    Ok((a, b))
}

impl Console {
    /// Parses one console line; `None` for a blank one.
    pub fn parse(line: &str) -> Result<Option<Console>, LabUsage> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let command = match words.as_slice() {
            [] => return Ok(None),
            ["cut", a, b] => {
                let (a, b) = pair(a, b)?;
                Console::Cut(a, b)
            }
            ["heal"] => Console::Heal(None),
            ["heal", a, b] => Console::Heal(Some(pair(a, b)?)),
            ["isolate", a] => Console::Isolate(region(a)?),
            ["delay", a, b, ms] => {
                let (a, b) = pair(a, b)?;
                Console::Delay(a, b, Duration::from_millis(number("delay", ms)?))
            }
            ["kill", a] => Console::Kill(region(a)?),
            ["start", a] => Console::Start(region(a)?),
            ["status"] => Console::Status,
            ["help"] => Console::Help,
            ["quit" | "exit"] => Console::Quit,
            _ => return Err(bad(format!("unknown command '{}'; {CONSOLE_HELP}", line.trim()))),
        };
        Ok(Some(command))
    }
}

/// A command line split into words, for the parsers' tests.
#[cfg(test)]
pub(super) fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::words as args;
    use super::*;

    #[test]
    fn defaults_and_flags() {
        assert_eq!(LabOptions::parse(&[]).unwrap(), LabOptions::default());
        let o = LabOptions::parse(&args("--dir /tmp/x --port 0 --rtt-ms 10,20,30 --jitter-ms 2 --loss 0.01 --topology ring")).unwrap();
        assert_eq!(o.dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(o.port, 0);
        assert_eq!(o.link(2, 0), LinkModel { delay: Duration::from_millis(10), jitter: Duration::from_millis(2), loss: 0.01 });
        assert_eq!(o.link(1, 2).delay, Duration::from_millis(15));
        assert_eq!(o.topology, "ring");
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let err = |s: &str| LabOptions::parse(&args(s)).unwrap_err().to_string();
        assert_eq!(err("--rtt-ms 1,2"), "--rtt-ms takes three values: a-b,a-c,b-c");
        assert_eq!(err("--loss 2"), "--loss is a share between 0 and 1");
        assert_eq!(err("--port"), "--port needs a value");
        assert_eq!(err("--port x"), "--port: 'x' is not a number");
        assert_eq!(err("--topology star"), "--topology is mesh or ring");
        assert_eq!(err("--nope"), "unknown argument '--nope'");
    }

    #[test]
    fn console_lines() {
        assert_eq!(Console::parse("  ").unwrap(), None);
        assert_eq!(Console::parse("cut a C").unwrap(), Some(Console::Cut(0, 2)));
        assert_eq!(Console::parse("heal").unwrap(), Some(Console::Heal(None)));
        assert_eq!(Console::parse("heal b a").unwrap(), Some(Console::Heal(Some((1, 0)))));
        assert_eq!(Console::parse("delay a b 300").unwrap(), Some(Console::Delay(0, 1, Duration::from_millis(300))));
        assert_eq!(Console::parse("kill b").unwrap(), Some(Console::Kill(1)));
        assert!(Console::parse("cut a a").unwrap_err().to_string().contains("two different regions"));
        assert!(Console::parse("cut a z").unwrap_err().to_string().contains("no region 'z'"));
        assert!(Console::parse("dance").unwrap_err().to_string().starts_with("unknown command 'dance'"));
    }
}
