#!/usr/bin/env python3
"""The flash tier, measured in one run on one machine, beside Debian's redis-server.

- Spilling: 1,000,000 keys of 100-byte values (about 330 MB in RAM) into a meridian with
  `--maxmemory` a tenth of that (`maxmemory-policy flash`), the same into a meridian without a
  limit (everything in RAM) and into redis-server. Then, on each:
  - GET latency p50/p99 of uniformly random keys (redis-benchmark -c 1; with a tenth in RAM,
    about nine GETs in ten hit a cold key), and throughput at -c 50;
  - a zipfian (s = 0.99) mix of 90% GET and 10% SET over the same keys, twice: from 50
    connections each waiting for its reply (bench/load, as application clients run), and as
    one connection's deep pipeline through redis-cli --pipe. Each server first gets one
    untimed pass of both (a cache is measured warm), then each round draws fresh keys. The
    flash node is reported as a ratio of the RAM node;
  - RocksDB bytes per key (the flash dir's size on disk over the keys).
- Durability: SET throughput at -P 1 under appendfsync everysec and always, meridian vs
  redis-server with the same appendfsync.
- Restart: 1,000,000 keys written under appendonly yes, the process killed with SIGKILL,
  restarted; time until it answers PING with every key back. Meridian replays its log (and, the
  second time, loads a checkpoint); Redis loads its AOF.

    python3 bench/flash.py            # full run (several minutes)
    python3 bench/flash.py --quick    # 100,000 keys, for a smoke check
    python3 bench/flash.py --zipfian-only --rounds 11   # the 50-client zipfian ratio, per round

Needs what bench/compare.py needs.
"""

import argparse
import bisect
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import MERIDIAN, ROOT, Server, free_port, load_keys  # noqa: E402

LOAD = os.path.join(ROOT, "target", "release", "meridian-load")


def start(name, argv_tail, data_dir=None):
    port = free_port()
    data_dir = data_dir or tempfile.mkdtemp(prefix=f"bench-{name}-")
    if name.startswith("redis"):
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", data_dir, *argv_tail]
    else:
        argv = [MERIDIAN, "--port", str(port), "--dir", data_dir, "--loglevel", "warning", *argv_tail]
    server = Server(name, argv, port)
    server.dir = data_dir
    return server


def redis_benchmark(server, test, clients, requests, keyspace, pipeline=1):
    """(requests/s, p50 ms, p99 ms) of one redis-benchmark run."""
    argv = ["redis-benchmark", "-p", str(server.port), "-t", test, "-c", str(clients), "-P", str(pipeline),
            "-n", str(requests), "-d", "100", "-r", str(keyspace), "--csv"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800).stdout
    header = None
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells[0] == "test":
            header = cells
        elif header and cells[0].upper() == test.upper():
            row = dict(zip(header, cells))
            return float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"])
    raise SystemExit(f"no result for {test} in: {out}")


def zipf_commands(keys, count, seed=7):
    """`count` RESP commands, 90% GET and 10% SET, keys drawn zipfian (s = 0.99) over `keys`
    ranks, each rank mapped to a scattered key id."""
    weights, total = [], 0.0
    for rank in range(1, keys + 1):
        total += 1.0 / rank ** 0.99
        weights.append(total)
    rng = random.Random(seed)
    value = b"z" * 100
    out = []
    for _ in range(count):
        rank = bisect.bisect_left(weights, rng.random() * total)
        key = b"key:%012d" % ((rank * 2_654_435_761) % keys)
        if rng.random() < 0.9:
            out.append(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key))
        else:
            out.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
    return b"".join(out)


def pipe_seconds(server, data):
    started = time.monotonic()
    out = subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=data, capture_output=True, timeout=1800)
    took = time.monotonic() - started
    if b"errors: 0" not in out.stdout:
        raise SystemExit(f"{server.name}: pipe failed: {out.stdout[-300:]!r}")
    return took


def zipf_load(server, keys, requests, seed):
    """Requests/s of `requests` zipfian GET/SET (90/10) from 50 connections at -P 1 (bench/load)."""
    argv = [LOAD, "--port", str(server.port), "--keys", str(keys), "--requests", str(requests), "--clients", "50", "--seed", str(seed)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{server.name}: meridian-load failed: {out.stderr}")
    return float(out.stdout.split("requests_per_sec=")[1])


def info_fields(server, section):
    """Every `field: value` of one INFO section, as strings."""
    return dict(line.split(":", 1) for line in server.cli("INFO", section).splitlines() if ":" in line)


def info(server, section, field):
    return info_fields(server, section)[field].strip()


def flash_counts(server):
    """(flash reads, promotions, keys in RAM) of a flash node, from one INFO flash."""
    fields = info_fields(server, "flash")
    return tuple(int(fields[name]) for name in ("flash_reads", "flash_promoted_keys", "flash_ram_keys"))


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def loaded_servers(keys):
    """redis-server, meridian with everything in RAM and meridian with `--maxmemory` a tenth of
    the data (`maxmemory-policy flash`), each loaded with `keys` keys of 100-byte values; and
    that maxmemory. The caller stops them."""
    maxmemory = f"{max(keys * 330 // 1_000_000 // 10, 8)}mb"
    servers = [start("redis", ["--appendonly", "no"]), start("meridian-ram", []),
               start("meridian-flash", ["--maxmemory", maxmemory, "--maxmemory-policy", "flash"])]
    try:
        for server in servers:
            load_keys(server, keys, 100)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    time.sleep(2)
    return servers, maxmemory


def spill_rows(keys, requests, rounds):
    servers, maxmemory = loaded_servers(keys)
    try:
        redis, ram, flash = servers
        cold = int(info(flash, "flash", "flash_cold_keys"))
        rows = [(f"keys in the flash tier after loading {keys:,} (maxmemory {maxmemory})", "", "", cold)]
        samples = {s.name: {"p1": [], "c50": [], "zipf": [], "zipf50": []} for s in servers}
        # One untimed pass of each workload first: a cache is measured warm, as it runs.
        warm = zipf_commands(keys, requests * 2, seed=1)
        for server in servers:
            pipe_seconds(server, warm)
            zipf_load(server, keys, requests, seed=1)
        for r in range(rounds):
            zipf = zipf_commands(keys, requests * 2, seed=7 + r)
            for server in (servers if r % 2 == 0 else servers[::-1]):
                samples[server.name]["p1"].append(redis_benchmark(server, "get", 1, requests // 5, keys))
                samples[server.name]["c50"].append(redis_benchmark(server, "get", 50, requests, keys)[0])
                samples[server.name]["zipf"].append((requests * 2) / pipe_seconds(server, zipf))
                samples[server.name]["zipf50"].append(zipf_load(server, keys, requests, seed=7 + r))
        med = lambda xs: statistics.median(xs)
        p50 = {n: med([x[1] for x in s["p1"]]) for n, s in samples.items()}
        p99 = {n: med([x[2] for x in s["p1"]]) for n, s in samples.items()}
        c50 = {n: med(s["c50"]) for n, s in samples.items()}
        zipf_rate = {n: med(s["zipf"]) for n, s in samples.items()}
        zipf50 = {n: med(s["zipf50"]) for n, s in samples.items()}
        for label, values in (("GET p50 ms, uniform keys, -c 1", p50), ("GET p99 ms, uniform keys, -c 1", p99),
                              ("GET requests/s, uniform keys, -c 50", c50),
                              ("zipfian 90/10 GET/SET requests/s, 50 clients, -P 1 (bench/load)", zipf50),
                              ("zipfian 90/10 GET/SET commands/s, one connection pipelined (redis-cli --pipe)", zipf_rate)):
            rows.append((label, values["redis"], values["meridian-ram"], values["meridian-flash"]))
        flash.cli("BGREWRITEAOF")  # refused without appendonly; harmless
        rows.append(("flash dir bytes per key (RocksDB on disk, cold keys)", "", "", dir_bytes(os.path.join(flash.dir, "flash")) / max(cold, 1)))
        rows.append(("used_memory, flash node / RAM node (MB)", "", int(info(ram, "memory", "used_memory")) / 1e6, int(info(flash, "memory", "used_memory")) / 1e6))
        rows.append(("RSS (MB; the flash node's includes RocksDB's memtables and block cache)", redis.rss() / 1e6, ram.rss() / 1e6, flash.rss() / 1e6))
        return rows
    finally:
        for server in servers:
            server.stop()


def durability_rows(requests):
    rows = []
    for fsync in ("everysec", "always"):
        pair = [start("redis", ["--appendonly", "yes", "--appendfsync", fsync]), start("meridian", ["--appendonly", "yes", "--appendfsync", fsync])]
        try:
            rates = {s.name: redis_benchmark(s, "set", 50, requests if fsync == "everysec" else requests // 5, 100_000)[0] for s in pair}
            rows.append((f"SET requests/s -c 50 -P 1, appendfsync {fsync}", rates["redis"], rates["meridian"]))
        finally:
            for server in pair:
                server.stop()
    return rows


def restart_seconds(server, argv_tail, keys):
    """SIGKILLs `server`, restarts it on its dir, returns (seconds until PING answers, the new server)."""
    data_dir = server.dir
    server.proc.kill()
    server.proc.wait()
    started = time.monotonic()
    again = start(server.name, argv_tail, data_dir)
    took = time.monotonic() - started
    got = int(again.cli("DBSIZE").strip())
    if got != keys:
        raise SystemExit(f"{server.name} came back with {got} keys, expected {keys}")
    return took, again


def restart_rows(keys):
    rows = []
    redis_args = ["--appendonly", "yes", "--appendfsync", "everysec"]
    meridian_args = ["--appendonly", "yes", "--appendfsync", "everysec"]
    redis, meridian = start("redis", redis_args), start("meridian", meridian_args)
    try:
        for server in (redis, meridian):
            load_keys(server, keys, 100)
        time.sleep(2)
        redis_s, redis = restart_seconds(redis, redis_args, keys)
        log_s, meridian = restart_seconds(meridian, meridian_args, keys)
        rows.append((f"restart after SIGKILL, {keys:,} keys, from the log (s)", redis_s, log_s))
        meridian.cli("BGREWRITEAOF")
        deadline = time.monotonic() + 300
        while info(meridian, "persistence", "aof_rewrites") == "0":
            if time.monotonic() > deadline:
                raise SystemExit("no checkpoint within 300 s")
            time.sleep(0.2)
        rows.append((f"checkpoint of {keys:,} keys (s)", "", float(info(meridian, "persistence", "aof_last_rewrite_time_sec"))))
        ckpt_s, meridian = restart_seconds(meridian, meridian_args, keys)
        rows.append((f"restart after SIGKILL, {keys:,} keys, from a checkpoint (s)", redis_s, ckpt_s))
        rows.append(("flash dir bytes per key after the checkpoint", "", dir_bytes(os.path.join(meridian.dir, "flash")) / keys))
        return rows
    finally:
        redis.stop()
        meridian.stop()


def fmt(x):
    if isinstance(x, str):
        return x
    return f"{x:,.3f}" if x < 10 else f"{x:,.0f}"


def zipfian_rounds(keys, requests, rounds):
    """The 50-client zipfian load alone, round by round: redis-server, meridian with everything
    in RAM and meridian with a tenth of it (the servers alternating), and the flash / RAM ratio
    of each round."""
    servers, _ = loaded_servers(keys)
    try:
        for server in servers:
            zipf_load(server, keys, requests, seed=1)
        ratios, cpu_ratios = [], []
        ram, flash = servers[1], servers[2]
        print("| round | redis | meridian, all in RAM | meridian, 1/10 in RAM | flash / RAM | server CPU µs per request, RAM / flash "
              "| flash reads / request | promotions / request | keys in RAM |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in range(rounds):
            rates, cpu = {}, {}
            before = flash_counts(flash)
            for server in (servers if r % 2 == 0 else servers[::-1]):
                started = server.cpu_seconds()
                rates[server.name] = zipf_load(server, keys, requests, seed=7 + r)
                cpu[server.name] = (server.cpu_seconds() - started) * 1e6 / requests
            after = flash_counts(flash)
            reads, promoted = ((after[i] - before[i]) / requests for i in (0, 1))
            ratios.append(rates[flash.name] / rates[ram.name])
            cpu_ratios.append(cpu[ram.name] / cpu[flash.name])
            print(f"| {r + 1} | {fmt(rates['redis'])} | {fmt(rates[ram.name])} | {fmt(rates[flash.name])} | {ratios[-1]:.3f} "
                  f"| {cpu[ram.name]:.1f} / {cpu[flash.name]:.1f} | {reads:.3f} | {promoted:.3f} | {after[2]:,} |", flush=True)
        print(f"\nmedian flash / RAM: {statistics.median(ratios):.3f}; rounds at 0.7 or more: {sum(x >= 0.7 for x in ratios)} of {rounds}")
        print(f"median RAM / flash server CPU per request: {statistics.median(cpu_ratios):.3f}")
    finally:
        for server in servers:
            server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller counts for a smoke run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per workload (median kept)")
    parser.add_argument("--zipfian-only", action="store_true", help="only the 50-client zipfian load, each round's ratio shown")
    args = parser.parse_args()
    if not (os.path.exists(MERIDIAN) and os.path.exists(LOAD)):
        subprocess.run(["cargo", "build", "--release", "-p", "meridian", "-p", "meridian-load"], cwd=ROOT, check=True)
    keys = 100_000 if args.quick else 1_000_000
    requests = 50_000 if args.quick else 200_000
    rounds = 1 if args.quick else args.rounds
    if args.zipfian_only:
        print(f"{keys:,} keys; {rounds} rounds of {requests:,} requests\n")
        zipfian_rounds(keys, requests, rounds)
        return
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    print(f"redis-server {version}; {keys:,} keys; {rounds} rounds, median kept\n")
    print("| measure | redis | meridian, all in RAM | meridian, 1/10 in RAM | flash / RAM |")
    print("|---|---:|---:|---:|---:|")
    for label, redis, ram, flash in spill_rows(keys, requests, rounds):
        ratio = f"{flash / ram:.2f}" if isinstance(ram, float) and isinstance(flash, float) and ram else ""
        print(f"| {label} | {fmt(redis)} | {fmt(ram)} | {fmt(flash)} | {ratio} |")
    print("\n| measure | redis | meridian | meridian / redis |")
    print("|---|---:|---:|---:|")
    for label, redis, meridian in durability_rows(requests) + restart_rows(keys):
        ratio = f"{meridian / redis:.2f}" if isinstance(redis, float) and redis else ""
        print(f"| {label} | {fmt(redis)} | {fmt(meridian)} | {ratio} |")


if __name__ == "__main__":
    main()
