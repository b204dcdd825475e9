#!/usr/bin/env python3
"""Meridian vs Redis, in one run on one machine.

Starts Debian's redis-server and a release-built meridian side by side on free loopback ports,
runs the same redis-benchmark workloads against each (alternating, several rounds, median kept),
then loads 1,000,000 keys into each and compares memory per key. Prints a markdown table of
absolute figures and Meridian/Redis ratios.

Throughput on a shared 2-core machine swings with other tenants (runs of the same server differ
by 2x when a noisy phase starts), so the servers alternate A-B, B-A, ... round by round, and each
workload also reports the server's instructions and CPU cycles per request (perf stat on the
server process, when perf works here). Instructions are the steadiest measure of the work a
server does per request; cycles add memory stalls but also the machine's noise.

    python3 bench/compare.py                          # full run (a few minutes)
    python3 bench/compare.py --quick                  # smaller counts, for a smoke check
    python3 bench/compare.py --meridian "--threads 2" # extra meridian flags

Needs: redis-server, redis-benchmark and redis-cli (apt install redis-server redis-tools), and
`cargo build --release -p meridian` (the script builds it if missing).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MERIDIAN = os.path.join(ROOT, "target", "release", "meridian")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            out = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True, timeout=2)
            if out.stdout.strip() == "PONG":
                return
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


class Server:
    def __init__(self, name, argv, port):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(port)

    def cli(self, *args, stdin=None):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], input=stdin, capture_output=True, timeout=600)
        return out.stdout.decode()

    def info(self, field):
        for line in self.cli("INFO", "memory").splitlines():
            if line.startswith(field + ":"):
                return int(line.split(":", 1)[1])
        raise KeyError(field)

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise KeyError("VmRSS")

    def cpu_seconds(self):
        """User plus system CPU time the process has used so far (from /proc, no perf needed)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def perf_works():
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", "cycles", "true"], capture_output=True, text=True, timeout=30)
        return out.returncode == 0 and "not supported" not in out.stderr
    except (OSError, subprocess.TimeoutExpired):
        return False


def benchmark(server, test, pipeline, requests, data_size, keyspace, use_perf, clients=50):
    """Runs one redis-benchmark workload; returns (requests/s, {event: per request}).

    The events are the server's CPU microseconds per request (`cpu_us`, from /proc, always) and,
    with `use_perf`, its instructions and cycles per request from perf stat."""
    argv = ["redis-benchmark", "-p", str(server.port), "-t", test, "-c", str(clients), "-P", str(pipeline),
            "-n", str(requests), "-d", str(data_size), "-r", str(keyspace), "--csv"]
    stat_file = None
    if use_perf:
        stat_file = tempfile.mktemp(prefix="bench-perf-")
        argv = ["perf", "stat", "-x,", "-e", "instructions,cycles", "-p", str(server.proc.pid), "-o", stat_file, "--"] + argv
    cpu_before = server.cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900).stdout
    counts = {"cpu_us": (server.cpu_seconds() - cpu_before) * 1e6 / requests}
    if stat_file:
        with open(stat_file) as f:
            for line in f:
                cells = line.split(",")
                if len(cells) > 2 and cells[0].isdigit():
                    counts[cells[2].split(":")[0]] = int(cells[0]) / requests
        os.unlink(stat_file)
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0].upper() == test.upper():
            return float(cells[1]), counts
    raise SystemExit(f"no result for {test} in: {out}")


def load_keys(server, count, value_size):
    """Writes `count` keys (key:000000000000 ...) with `value_size`-byte values via redis-cli --pipe."""
    value = b"x" * value_size
    chunks = []
    for i in range(count):
        key = b"key:%012d" % i
        chunks.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
    data = b"".join(chunks)
    out = subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=data, capture_output=True, timeout=900)
    if b"errors: 0" not in out.stdout:
        raise SystemExit(f"loading into {server.name} failed: {out.stdout!r} {out.stderr!r}")


def start_pair(extra):
    rp, mp = free_port(), free_port()
    redis = Server("redis", ["redis-server", "--port", str(rp), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", tempfile.mkdtemp(prefix="bench-redis-")], rp)
    meridian = Server("meridian", [MERIDIAN, "--port", str(mp), "--dir", tempfile.mkdtemp(prefix="bench-meridian-"),
                                   "--loglevel", "warning", *extra], mp)
    return redis, meridian


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller counts for a smoke run")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per workload (median kept)")
    parser.add_argument("--meridian", default="", help="extra meridian flags, e.g. \"--threads 2\"")
    args = parser.parse_args()
    extra = args.meridian.split()
    use_perf = perf_works()
    if not os.path.exists(MERIDIAN):
        subprocess.run(["cargo", "build", "--release", "-p", "meridian"], cwd=ROOT, check=True)
    keys = 100_000 if args.quick else 1_000_000
    n_p1 = 100_000 if args.quick else 500_000
    n_p16 = 500_000 if args.quick else 3_000_000
    rounds = 1 if args.quick else args.rounds

    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    rows = []
    cycle_rows = []
    redis, meridian = start_pair(extra)
    try:
        for test in ("set", "get"):
            for pipeline, n in ((1, n_p1), (16, n_p16)):
                results = {"redis": [], "meridian": []}
                events = {"redis": {}, "meridian": {}}
                for round_no in range(rounds):
                    # A-B, then B-A: a slow phase of the machine hits both servers alike.
                    order = (redis, meridian) if round_no % 2 == 0 else (meridian, redis)
                    for server in order:
                        rps, counts = benchmark(server, test, pipeline, n, 100, 1_000_000, use_perf)
                        results[server.name].append(rps)
                        for event, per_request in counts.items():
                            events[server.name].setdefault(event, []).append(per_request)
                r, m = statistics.median(results["redis"]), statistics.median(results["meridian"])
                name = f"{test.upper()} -c 50 -P {pipeline} -d 100 -r 1000000"
                rows.append((f"{name} (req/s)", r, m))
                print(f"  {name}: redis {sorted(results['redis'])} meridian {sorted(results['meridian'])} ratio {m / r:.2f}", file=sys.stderr)
                for event in ("instructions", "cycles", "cpu_us"):
                    if event in events["redis"] and event in events["meridian"]:
                        cycle_rows.append((f"{name} (server {event} per request)",
                                           statistics.median(events["redis"][event]), statistics.median(events["meridian"][event])))

    finally:
        redis.stop()
        meridian.stop()

    # Memory in fresh processes: an allocator that already holds freed pages would hide growth.
    redis, meridian = start_pair(extra)
    try:
        base = {s.name: (s.info("used_memory"), s.rss()) for s in (redis, meridian)}
        for server in (redis, meridian):
            load_keys(server, keys, 100)
        time.sleep(1)
        for server in (redis, meridian):
            dbsize = int(server.cli("DBSIZE").strip())
            if dbsize != keys:
                raise SystemExit(f"{server.name} holds {dbsize} keys, expected {keys}")
        per_key = {}
        for s in (redis, meridian):
            used, rss = s.info("used_memory"), s.rss()
            per_key[s.name] = ((used - base[s.name][0]) / keys, (rss - base[s.name][1]) / keys)
        rows.append((f"used_memory per key, {keys:,} keys x 100 B (bytes)", per_key["redis"][0], per_key["meridian"][0]))
        rows.append((f"RSS per key, {keys:,} keys x 100 B (bytes)", per_key["redis"][1], per_key["meridian"][1]))
    finally:
        redis.stop()
        meridian.stop()

    flags = f" with `{args.meridian}`" if args.meridian else ""
    print(f"\nredis-server {version} vs meridian{flags}, {os.cpu_count()} cores, median of {rounds} round(s)\n")
    print("| workload | redis | meridian | meridian / redis |")
    print("|---|---:|---:|---:|")
    for name, r, m in rows + cycle_rows:
        # Per-request CPU microseconds are small numbers: keep their decimals.
        digits = 2 if max(r, m) < 100 else 0
        print(f"| {name} | {r:,.{digits}f} | {m:,.{digits}f} | {m / r:.2f} |")
    if cycle_rows:
        print("\n(Per-request instructions and cycles: lower is better; a ratio below 1 means Meridian does less work.)")


if __name__ == "__main__":
    main()
