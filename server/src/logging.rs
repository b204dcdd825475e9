//! Logging through `tracing`, to standard output or `logfile`, at a level CONFIG SET can change.

use crate::config::LogLevel;
use crate::shared::LogControl;
use std::fs::OpenOptions;
use std::sync::Mutex;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter};

/// Installs the global subscriber; returns the control that changes its level later.
pub fn init(level: LogLevel, logfile: &str) -> std::io::Result<LogControl> {
    let (filter, handle) = reload::Layer::new(EnvFilter::new(level.directive()));
    let writer = if logfile.is_empty() {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        let file = OpenOptions::new().create(true).append(true).open(logfile)?;
        BoxMakeWriter::new(Mutex::new(file))
    };
    let layer = fmt::layer().with_writer(writer).with_ansi(false).with_target(false);
    // A second init (tests that start several servers in one process) keeps the first.
    let _ = tracing_subscriber::registry().with(filter).with(layer).try_init();
    Ok(Box::new(move |level: LogLevel| {
        let _ = handle.reload(EnvFilter::new(level.directive()));
    }))
}
