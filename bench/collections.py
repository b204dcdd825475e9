#!/usr/bin/env python3
"""Meridian vs Redis for hashes, sets, sorted sets and lists, in one run on one machine.

Starts Debian's redis-server and a release-built meridian side by side (the same way as
bench/compare.py, whose helpers this script uses), then:

- loads a 1,000,000-member set, a 1,000,000-field hash, a 1,000,000-member sorted set and one
  whose members all score 0 into each (fresh processes, members `member:000000000000`, hash
  values of 8 bytes, integer scores 0-999,999) and compares memory per element (`used_memory`
  and RSS growth);
- with each big collection loaded, runs redis-benchmark on reads whose cost could grow with the
  collection (ZRANK, ZCOUNT, ZRANGE by rank and score, the RAND commands; random members via
  `__rand_int__`) and compares requests/s;
- runs redis-benchmark's HSET, SADD, ZADD and LPUSH workloads (-c 50, -P 1 and -P 16, alternating servers
  round by round) and compares requests/s (the ratio of the medians, and the median of each round's
  ratio: the two servers of a round run back to back, so a slow phase of a shared machine hits
  both) and server CPU per request.

    python3 bench/collections.py            # full run (a few minutes)
    python3 bench/collections.py --quick    # smaller counts, one round

Needs what bench/compare.py needs.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import MERIDIAN, ROOT, benchmark, start_pair  # noqa: E402


def words_for(command, key, i):
    """The command adding element `i` to `key`."""
    member = b"member:%012d" % i
    if command == b"HSET":
        return [command, key, member, b"v%07d" % (i % 10_000_000)]
    if command == b"ZADD":
        # `lexzset` gives every member one score, as lex ranges assume.
        return [command, key, b"0" if key == b"lexzset" else b"%d" % i, member]
    return [command, key, member]


def load(server, command, key, count):
    """Adds `count` members to `key` with one `command` each, through redis-cli --pipe."""
    chunks = []
    for i in range(count):
        words = words_for(command, key, i)
        chunks.append(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
    out = subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=b"".join(chunks), capture_output=True, timeout=900)
    if b"errors: 0" not in out.stdout:
        raise SystemExit(f"loading into {server.name} failed: {out.stdout!r} {out.stderr!r}")


def command_rate(server, words, requests):
    """redis-benchmark's requests/s for one command (-c 50 -P 1), `__rand_int__` a random 12-digit
    number below 1,000,000."""
    argv = ["redis-benchmark", "-p", str(server.port), "-c", "50", "-n", str(requests), "-r", "1000000", "--csv", *words]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) > 1 and cells[1].replace(".", "", 1).isdigit():
            return float(cells[1])
    raise SystemExit(f"no result for {words} on {server.name}: {out}")


# Reads of one big collection whose cost could grow with its size (Redis: O(1) or O(log n)).
BIG_READS = {
    b"bigset": (["SRANDMEMBER", "bigset"], ["SRANDMEMBER", "bigset", "10"], ["SISMEMBER", "bigset", "member:__rand_int__"]),
    b"bighash": (["HRANDFIELD", "bighash"], ["HRANDFIELD", "bighash", "-10"]),
    b"bigzset": (["ZRANK", "bigzset", "member:__rand_int__"], ["ZRANDMEMBER", "bigzset"], ["ZCOUNT", "bigzset", "250000", "750000"],
                 ["ZRANGE", "bigzset", "900000", "900009"], ["ZRANGEBYSCORE", "bigzset", "500000", "500009"]),
    b"lexzset": (["ZLEXCOUNT", "lexzset", "[member:000000250000", "(member:000000750000"],
                 ["ZRANGEBYLEX", "lexzset", "[member:000000500000", "+", "LIMIT", "0", "10"]),
}


def memory_rows(elements, read_requests):
    rows = []
    for what, command, key, card in (
        ("member set", b"SADD", b"bigset", "SCARD"),
        ("field hash (8 B values)", b"HSET", b"bighash", "HLEN"),
        ("member sorted set", b"ZADD", b"bigzset", "ZCARD"),
        ("member sorted set of one score", b"ZADD", b"lexzset", "ZCARD"),
    ):
        # Fresh processes per type: an allocator holding freed pages would hide growth.
        redis, meridian = start_pair([])
        try:
            base = {s.name: (s.info("used_memory"), s.rss()) for s in (redis, meridian)}
            for server in (redis, meridian):
                load(server, command, key, elements)
            time.sleep(1)
            for server in (redis, meridian):
                n = int(server.cli(card, key.decode()).strip())
                if n != elements:
                    raise SystemExit(f"{server.name} holds {n} elements in {key!r}, expected {elements}")
            per = {s.name: ((s.info("used_memory") - base[s.name][0]) / elements, (s.rss() - base[s.name][1]) / elements) for s in (redis, meridian)}
            what = f"{elements:,}-{what}"
            rows.append((f"used_memory per element, {what} (bytes)", per["redis"][0], per["meridian"][0]))
            rows.append((f"RSS per element, {what} (bytes)", per["redis"][1], per["meridian"][1]))
            for words in BIG_READS[key]:
                rate = {s.name: command_rate(s, words, read_requests) for s in (redis, meridian)}
                rows.append((f"{' '.join(words)} on the {what} (req/s)", rate["redis"], rate["meridian"]))
        finally:
            redis.stop()
            meridian.stop()
    return rows


def throughput_rows(requests, rounds):
    rows, cpu_rows, paired_rows = [], [], []
    redis, meridian = start_pair([])
    try:
        for test in ("hset", "sadd", "zadd", "lpush"):
            for pipeline in (1, 16):
                n = requests * (4 if pipeline > 1 else 1)
                results = {"redis": [], "meridian": []}
                cpu = {"redis": [], "meridian": []}
                for round_no in range(rounds):
                    order = (redis, meridian) if round_no % 2 == 0 else (meridian, redis)
                    for server in order:
                        rps, counts = benchmark(server, test, pipeline, n, 100, 1_000_000, False)
                        results[server.name].append(rps)
                        cpu[server.name].append(counts["cpu_us"])
                r, m = statistics.median(results["redis"]), statistics.median(results["meridian"])
                paired = statistics.median(b / a for a, b in zip(results["redis"], results["meridian"]))
                name = f"{test.upper()} -c 50 -P {pipeline} -r 1000000"
                print(f"  {name}: redis {results['redis']} meridian {results['meridian']} ratio {m / r:.2f} per-round {paired:.2f}", file=sys.stderr)
                rows.append((f"{name} (req/s)", r, m))
                paired_rows.append((f"{name}, median of the rounds' meridian / redis", paired))
                cpu_rows.append((f"{name} (server CPU us per request)", statistics.median(cpu["redis"]), statistics.median(cpu["meridian"])))
    finally:
        redis.stop()
        meridian.stop()
    return rows + cpu_rows, paired_rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller counts, one round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if not os.path.exists(MERIDIAN):
        subprocess.run(["cargo", "build", "--release", "-p", "meridian"], cwd=ROOT, check=True)
    elements = 100_000 if args.quick else 1_000_000
    requests = 100_000 if args.quick else 300_000
    rounds = 1 if args.quick else args.rounds
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    throughput, paired = throughput_rows(requests, rounds)
    rows = memory_rows(elements, requests // 10) + throughput
    print(f"\nredis-server {version} vs meridian, {os.cpu_count()} cores, median of {rounds} round(s)\n")
    print("| workload | redis | meridian | meridian / redis |")
    print("|---|---:|---:|---:|")
    for name, r, m in rows:
        digits = 2 if max(r, m) < 100 else 0
        print(f"| {name} | {r:,.{digits}f} | {m:,.{digits}f} | {m / r:.2f} |")
    print("\n| workload, per round | meridian / redis |")
    print("|---|---:|")
    for name, ratio in paired:
        print(f"| {name} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
