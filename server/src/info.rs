//! INFO: server state in Redis's `field:value` format, section by section, so existing
//! exporters and dashboards read it unchanged.

use crate::alloc::{rss, used_memory, ALLOCATOR_NAME};
use crate::clock::now_us;
use crate::keyspace::{Locked, ShardCounts};
use crate::shared::Shared;
use crate::stats::Stats;
use meridian_crdt::Conflict;
use std::fmt::Write;

/// The Redis version Meridian reports (the command set and reply formats it follows).
pub const REDIS_VERSION: &str = "7.2.4";

/// Sections of a plain `INFO`, in Redis's order.
const DEFAULT_SECTIONS: &[&str] = &["server", "clients", "memory", "persistence", "flash", "stats", "replication", "conflicts", "cpu", "cluster", "keyspace"];

/// Bytes in Redis's human form (`1.50M`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

/// Renders the sections `requested` names (`all`, `everything` and `default` included; empty
/// means default), with the keyspace read through `db`.
pub fn render(shared: &Shared, db: &mut Locked, requested: &[String]) -> String {
    let mut wanted: Vec<&str> = Vec::new();
    for name in requested {
        match name.as_str() {
            "all" | "everything" | "default" => wanted.extend(DEFAULT_SECTIONS),
            other => wanted.push(other),
        }
    }
    if wanted.is_empty() {
        wanted.extend(DEFAULT_SECTIONS);
    }
    let counts = db.counts();
    let mut out = String::new();
    for section in DEFAULT_SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        match *section {
            "server" => server(&mut out, shared),
            "clients" => clients(&mut out, shared),
            "memory" => memory(&mut out, shared),
            "persistence" => persistence(&mut out, shared),
            "flash" => flash(&mut out, shared, &counts),
            "stats" => stats(&mut out, shared, &counts),
            "replication" => replication(&mut out, shared),
            "conflicts" => conflicts(&mut out, shared),
            "cpu" => cpu(&mut out, shared),
            "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
            _ => keyspace(&mut out, &counts),
        }
    }
    out
}

macro_rules! fields {
    ($out:expr, $($name:literal => $value:expr),* $(,)?) => {
        $( let _ = write!($out, concat!($name, ":{}\r\n"), $value); )*
    };
}

fn server(out: &mut String, shared: &Shared) {
    let config = shared.config.read();
    let uptime = shared.started.elapsed().as_secs();
    out.push_str("# Server\r\n");
    fields!(out,
        "redis_version" => REDIS_VERSION,
        "redis_git_sha1" => "00000000",
        "redis_git_dirty" => 0,
        "redis_mode" => "standalone",
        "meridian_version" => env!("CARGO_PKG_VERSION"),
        "meridian_node_id" => shared.node.id(),
        "os" => std::env::consts::OS,
        "arch_bits" => usize::BITS,
        "multiplexing_api" => "epoll",
        "process_id" => std::process::id(),
        "run_id" => shared.run_id,
        "tcp_port" => config.port,
        "server_time_usec" => now_us(),
        "uptime_in_seconds" => uptime,
        "uptime_in_days" => uptime / 86400,
        "hz" => config.hz,
        "configured_hz" => config.hz,
        "executable" => std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
        "config_file" => config.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "io_threads_active" => 0,
    );
}

fn clients(out: &mut String, shared: &Shared) {
    out.push_str("# Clients\r\n");
    fields!(out,
        "connected_clients" => shared.clients.count(),
        "cluster_connections" => 0,
        "maxclients" => shared.config.read().maxclients,
        "blocked_clients" => shared.clients.blocked(),
        "tracking_clients" => 0,
    );
}

fn memory(out: &mut String, shared: &Shared) {
    let (used, rss) = (used_memory(), rss());
    let peak = shared.stats.peak_memory.fetch_max(used, std::sync::atomic::Ordering::Relaxed).max(used);
    let config = shared.config.read();
    let log = shared.node.log_stats();
    out.push_str("# Memory\r\n");
    fields!(out,
        "used_memory" => used,
        "used_memory_human" => human_bytes(used),
        "used_memory_rss" => rss,
        "used_memory_rss_human" => human_bytes(rss),
        "used_memory_peak" => peak,
        "used_memory_peak_human" => human_bytes(peak),
        "maxmemory" => config.maxmemory,
        "maxmemory_human" => human_bytes(config.maxmemory),
        "maxmemory_policy" => config.policy().name(),
        "mem_fragmentation_ratio" => format!("{:.2}", rss as f64 / used.max(1) as f64),
        "mem_allocator" => ALLOCATOR_NAME,
        "mem_oplog" => log.allocated,
        "mem_not_counted_for_evict" => crate::reclaim::not_counted_memory(shared),
    );
}

/// Redis's AOF fields, read as the flash tier's equivalents: a rewrite is a checkpoint, the
/// base size is the last checkpoint's bytes, the current size adds the log written since.
fn persistence(out: &mut String, shared: &Shared) {
    out.push_str("# Persistence\r\n");
    fields!(out, "loading" => 0, "async_loading" => 0);
    let Some(durable) = shared.node.durable() else {
        fields!(out, "aof_enabled" => 0);
        return;
    };
    let history = durable.history();
    let status = |failed: bool| if failed { "err" } else { "ok" };
    let base = durable.checkpoint_bytes();
    fields!(out,
        "aof_enabled" => 1,
        "aof_rewrite_in_progress" => durable.checkpointing() as u8,
        "aof_rewrites" => history.completed,
        "aof_last_rewrite_time_sec" => if history.completed > 0 { history.last_duration.as_secs() as i64 } else { -1 },
        "aof_last_bgrewrite_status" => status(history.last_error.is_some()),
        "aof_last_write_status" => status(durable.failure().is_some()),
        "aof_current_size" => base + durable.log_bytes(),
        "aof_base_size" => base,
        "aof_fsyncs" => durable.fsyncs(),
        "appendfsync" => durable.fsync().name(),
        "recovery_time_ms" => history.recovery.duration.as_millis(),
        "recovered_keys" => history.recovery.keys,
        "recovered_ops" => history.recovery.ops,
        "recovery_skipped_ops" => history.recovery.skipped,
    );
}

/// The flash tier: cold keys, spills and promotions, and RocksDB's size.
fn flash(out: &mut String, shared: &Shared, counts: &ShardCounts) {
    out.push_str("# Flash\r\n");
    let Some(tier) = shared.keyspace.cold() else {
        fields!(out, "flash_enabled" => 0);
        return;
    };
    let (size, stats) = (tier.size(), tier.stats());
    let spill = &shared.reclaim;
    fields!(out,
        "flash_enabled" => 1,
        "flash_dir" => tier.path().display(),
        "flash_cold_keys" => counts.cold,
        "flash_ram_keys" => counts.in_ram(),
        "flash_spilled_keys" => stats.spilled,
        "flash_promoted_keys" => stats.promoted,
        "flash_reads" => stats.reads,
        "flash_collected_keys" => stats.collected,
        "flash_collect_cycles" => stats.collect_cycles,
        "flash_spills_per_sec" => spill.spills_per_sec.load(std::sync::atomic::Ordering::Relaxed),
        "flash_promotions_per_sec" => spill.promotions_per_sec.load(std::sync::atomic::Ordering::Relaxed),
        "flash_sst_bytes" => size.sst_bytes,
        "flash_memtable_bytes" => size.memtable_bytes,
        "flash_estimated_cold_keys" => size.estimated_keys,
    );
}

fn stats(out: &mut String, shared: &Shared, counts: &ShardCounts) {
    let s = &shared.stats;
    let totals = s.totals();
    out.push_str("# Stats\r\n");
    fields!(out,
        "total_connections_received" => Stats::get(&s.connections),
        "total_commands_processed" => totals.commands,
        "instantaneous_ops_per_sec" => Stats::get(&s.ops_per_sec),
        "total_net_input_bytes" => totals.net_in,
        "total_net_output_bytes" => totals.net_out,
        "rejected_connections" => Stats::get(&s.rejected),
        "expired_keys" => counts.expired,
        "evicted_keys" => shared.reclaim.evicted.load(std::sync::atomic::Ordering::Relaxed),
        "keyspace_hits" => totals.hits,
        "keyspace_misses" => totals.misses,
        "pubsub_channels" => 0,
        "pubsub_patterns" => 0,
        "total_error_replies" => totals.errors,
    );
}

/// Conflicts settled applying peers' ops: the total, then one `conflicts_<type>_<rule>` field
/// per kind (every kind listed, zero or not, so dashboards find stable names).
fn conflicts(out: &mut String, shared: &Shared) {
    let counts = shared.conflicts.counts();
    out.push_str("# Conflicts\r\n");
    fields!(out,
        "conflicts_total" => counts.iter().sum::<u64>(),
        "conflict_log_len" => shared.conflicts.len(),
    );
    for ((data_type, rule), count) in Conflict::KINDS.iter().zip(counts) {
        let _ = write!(out, "conflicts_{}_{}:{count}\r\n", data_type.name(), rule.name().replace('-', "_"));
    }
}

fn replication(out: &mut String, shared: &Shared) {
    let log = shared.node.log_stats();
    let peers = shared.replication.as_ref().map(|r| r.peer_lines(&shared.node)).unwrap_or_default();
    out.push_str("# Replication\r\n");
    fields!(out,
        "role" => "active-active",
        "node_id" => shared.node.node_id(),
        "origin" => shared.node.id(),
    );
    if let Some(r) = &shared.replication {
        fields!(out,
            "node_name" => r.name,
            "cluster_id" => r.cluster,
            "topology" => if r.topology == meridian_geo::Topology::Mesh { "mesh" } else { "ring" },
        );
    }
    fields!(out,
        "connected_peers" => peers.iter().filter(|p| p.contains("state=connected")).count(),
        "connected_slaves" => 0,
        "master_repl_offset" => log.appended,
        "repl_backlog_active" => 1,
        "repl_backlog_size" => log.max_bytes,
        "repl_backlog_first_byte_offset" => log.first_position,
        "repl_backlog_histlen" => log.bytes,
        "oplog_ops" => log.ops,
        "applied_vector" => vector_text(&shared.node.applied()),
    );
    if let Some(r) = &shared.replication {
        fields!(out, "stable_vector" => vector_text(&r.stable()));
    }
    for (i, line) in peers.iter().enumerate() {
        let _ = write!(out, "peer{i}:{line}\r\n");
    }
}

/// A version vector as `origin:seq` pairs, comma-separated, for operators comparing nodes.
fn vector_text(vector: &meridian_crdt::VersionVector) -> String {
    vector.iter().map(|(origin, seq, _)| format!("{origin}:{seq}")).collect::<Vec<_>>().join(",")
}

fn cpu(out: &mut String, shared: &Shared) {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    let polled = shared.idle_poll.idle_polled();
    let polled = libc::timeval { tv_sec: polled.as_secs() as libc::time_t, tv_usec: polled.subsec_micros() as libc::suseconds_t };
    out.push_str("# CPU\r\n");
    fields!(out,
        "used_cpu_sys" => secs(usage.ru_stime),
        "used_cpu_user" => secs(usage.ru_utime),
        "used_cpu_sys_children" => "0.000000",
        "used_cpu_user_children" => "0.000000",
        "used_cpu_busy_poll" => secs(polled),
        "busy_poll_window_us" => shared.idle_poll.window().as_micros(),
    );
}

fn keyspace(out: &mut String, counts: &ShardCounts) {
    out.push_str("# Keyspace\r\n");
    if counts.live > 0 {
        let _ = write!(out, "db0:keys={},expires={},avg_ttl=0\r\n", counts.live, counts.volatile);
    }
}
