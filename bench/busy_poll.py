#!/usr/bin/env python3
"""Meridian at several `busy-poll-us` settings against Redis, in one run on one machine.

Starts Debian's redis-server and one meridian per setting side by side (bench/compare.py's
helpers), then runs redis-benchmark request/response workloads (-P 1) against each, the
servers alternating round by round (A-B-C, C-B-A, ...). Prints, per workload and server, the
median requests/s, the median of each round's ratio to Redis (the servers of a round run back
to back, so a slow phase of a shared machine hits them alike), how many rounds beat Redis, and
the server's CPU per request.

    python3 bench/busy_poll.py                                  # 0 and 100 at -c 50, 16 rounds
    python3 bench/busy_poll.py --values 0,50,100,200 --tests sadd,lpush
    python3 bench/busy_poll.py --clients 1 --requests 20000 --rounds 4

Needs what bench/compare.py needs.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import MERIDIAN, ROOT, Server, benchmark, free_port  # noqa: E402


def start(values):
    """Redis first, then one meridian per `busy-poll-us` value."""
    port = free_port()
    servers = [Server("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", tempfile.mkdtemp(prefix="bench-redis-")], port)]
    for value in values:
        port = free_port()
        servers.append(Server(f"busy-poll-us {value}", [MERIDIAN, "--port", str(port), "--dir", tempfile.mkdtemp(prefix="bench-meridian-"),
                                                        "--loglevel", "warning", "--busy-poll-us", value], port))
    return servers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--values", default="0,100", help="busy-poll-us settings, comma-separated")
    parser.add_argument("--tests", default="hset,sadd,zadd,lpush", help="redis-benchmark tests, comma-separated")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=100_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=16)
    args = parser.parse_args()
    if not os.path.exists(MERIDIAN):
        subprocess.run(["cargo", "build", "--release", "-p", "meridian"], cwd=ROOT, check=True)
    servers = start(args.values.split(","))
    try:
        print(f"-c {args.clients} -P 1, {args.rounds} rounds of {args.requests:,} requests\n")
        print("| workload | server | requests/s | per-round ratio to redis | rounds above redis | server CPU µs per request |")
        print("|---|---|---:|---:|---:|---:|")
        for test in args.tests.split(","):
            runs = {s.name: [] for s in servers}
            for round_no in range(args.rounds):
                for server in servers if round_no % 2 == 0 else servers[::-1]:
                    rps, counts = benchmark(server, test, 1, args.requests, 100, 1_000_000, False, clients=args.clients)
                    runs[server.name].append((rps, counts["cpu_us"]))
            redis = [rps for rps, _ in runs["redis"]]
            for server in servers:
                rates = [rps for rps, _ in runs[server.name]]
                ratios = [m / r for m, r in zip(rates, redis)]
                above = sum(ratio > 1 for ratio in ratios) if server.name != "redis" else "-"
                cpu = statistics.median(c for _, c in runs[server.name])
                print(f"| {test.upper()} | {server.name} | {statistics.median(rates):,.0f} | {statistics.median(ratios):.3f} | {above} | {cpu:.2f} |", flush=True)
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
