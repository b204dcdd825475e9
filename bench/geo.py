#!/usr/bin/env python3
"""Geo replication figures, in one run on one machine.

Starts Debian's redis-server, a lone meridian node, and a 3-node meridian mesh (QUIC, mutual
TLS, certificates from `meridian certs`) on loopback, and measures:

- replication lag: under a steady write load on node A, probe writes on A are polled for on
  node B; the time until B serves them, p50 / p99;
- throughput of SET on a node with two peers attached, as a ratio of the same node alone and
  of redis-server alone (redis-benchmark -t set -c 50 -P 16 -d 32, median of rounds). On one
  machine the two peers share its cores with the node and the load generator, so the
  wall-clock ratio measures the machine; the run also reports the node's own CPU time per
  request (from /proc), and with `perf` working its cycles and instructions, alone and with
  peers, whose ratio is the throughput ratio the node would show with its peers on other
  machines;
- bytes per replicated SET of a 16-byte key and a 32-byte value: frame bytes and UDP bytes
  (QUIC overhead included) sent to one peer, per op, for new keys and for overwrites.

    python3 bench/geo.py            # full run
    python3 bench/geo.py --quick    # smaller counts
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import MERIDIAN, ROOT, Server, benchmark, free_port, perf_works  # noqa: E402


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mesh(n=3):
    certs = tempfile.mkdtemp(prefix="bench-certs-")
    names = [f"n{i}" for i in range(n)]
    subprocess.run([MERIDIAN, "certs", certs, "--nodes", ",".join(names)], check=True, capture_output=True)
    geo = [free_udp_port() for _ in names]
    nodes = []
    for i, name in enumerate(names):
        port = free_port()
        argv = [MERIDIAN, "--port", str(port), "--dir", tempfile.mkdtemp(prefix=f"bench-{name}-"), "--loglevel", "warning",
                "--geo-port", str(geo[i]), "--node-name", name, "--tls-cert", f"{certs}/{name}.pem",
                "--tls-key", f"{certs}/{name}.key", "--tls-ca", f"{certs}/ca.pem"]
        for k in range(1, n):
            argv += ["--peer", f"127.0.0.1:{geo[(i + k) % n]}"]
        nodes.append(Server(name, argv, port))
    return nodes


def wait_connected(node, peers):
    deadline = time.time() + 20
    while time.time() < deadline:
        if f"connected_peers:{peers}" in node.cli("INFO", "replication"):
            return
        time.sleep(0.1)
    raise SystemExit("mesh did not connect")


def peer_bytes(node, peer_name):
    for line in node.cli("INFO", "replication").splitlines():
        if line.startswith("peer") and f"name={peer_name}," in line:
            fields = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split(","))
            return int(fields["sent_bytes"]), int(fields["wire_bytes"])
    raise KeyError(peer_name)


def lag(a, b, probes, rate):
    """Probe latency from a write on `a` to its visibility on `b`, under a background load."""
    stop = threading.Event()

    def load():
        client = redis.Redis(port=a.port)
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for _ in range(rate // 100):
                pipe.set(f"load:{i % 100000:08d}", "v" * 32)
                i += 1
            pipe.execute()
            time.sleep(max(0.0, 0.01 - (time.perf_counter() - start)))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    writer, reader = redis.Redis(port=a.port), redis.Redis(port=b.port)
    samples = []
    for i in range(probes):
        key = f"probe:{i}"
        start = time.perf_counter()
        writer.set(key, "x")
        while reader.get(key) is None:
            pass
        samples.append((time.perf_counter() - start) * 1000)
        time.sleep(0.002)
    stop.set()
    loader.join()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def wire_per_set(a, b_name, count, overwrite):
    client = redis.Redis(port=a.port)
    if overwrite:
        pipe = client.pipeline(transaction=False)
        for i in range(count):
            pipe.set(f"w:{i:014d}", "y" * 32)
        pipe.execute()
        time.sleep(1)
    before = peer_bytes(a, b_name)
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"w:{i:014d}", "z" * 32)   # 16-byte key, 32-byte value
    pipe.execute()
    time.sleep(1.5)
    after = peer_bytes(a, b_name)
    return (after[0] - before[0]) / count, (after[1] - before[1]) / count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(MERIDIAN):
        subprocess.run(["cargo", "build", "--release", "-p", "meridian"], cwd=ROOT, check=True)
    rounds = 1 if args.quick else 5
    n = 300_000 if args.quick else 2_000_000
    probes = 300 if args.quick else 2000
    rows = []

    mesh = start_mesh()
    rp, lp = free_port(), free_port()
    redis_server = Server("redis", ["redis-server", "--port", str(rp), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", tempfile.mkdtemp()], rp)
    lone = Server("meridian", [MERIDIAN, "--port", str(lp), "--dir", tempfile.mkdtemp(), "--loglevel", "warning"], lp)
    try:
        for node in mesh:
            wait_connected(node, 2)
        a, b = mesh[0], mesh[1]

        p50, p99 = lag(a, b, probes, 5000)
        rows.append(("replication lag A->B under 5,000 SET/s, p50 (ms)", p50))
        rows.append(("replication lag A->B under 5,000 SET/s, p99 (ms)", p99))

        for overwrite, label in ((False, "new keys"), (True, "overwrites")):
            frame, wire = wire_per_set(a, "n1", 20_000, overwrite)
            rows.append((f"frame bytes per replicated SET (16 B key, 32 B value, {label})", frame))
            rows.append((f"UDP bytes per replicated SET (16 B key, 32 B value, {label})", wire))
            rows.append((f"  ratio to key+value bytes (48), UDP, {label}", wire / 48))

        use_perf = perf_works()
        results = {"redis": [], "alone": [], "peered": []}
        counters = {"alone": [], "peered": []}
        for _ in range(rounds):
            for name, server in (("redis", redis_server), ("alone", lone), ("peered", a)):
                rps, counts = benchmark(server, "set", 16, n, 32, 1_000_000, use_perf and name != "redis")
                results[name].append(rps)
                if name != "redis":
                    counters[name].append(counts)
        r, alone, peered = (statistics.median(results[k]) for k in ("redis", "alone", "peered"))
        rows.append(("SET -c 50 -P 16 -d 32 req/s: redis-server alone", r))
        rows.append(("SET -c 50 -P 16 -d 32 req/s: meridian alone", alone))
        rows.append(("SET -c 50 -P 16 -d 32 req/s: meridian with two peers (same machine)", peered))
        rows.append(("  with peers / alone, wall clock", peered / alone))
        rows.append(("  with peers / redis-server, wall clock", peered / r))
        cpu = {k: statistics.median(c["cpu_us"] for c in counters[k]) for k in counters}
        rows.append(("node CPU us per SET: alone", cpu["alone"]))
        rows.append(("node CPU us per SET: with two peers", cpu["peered"]))
        rows.append(("  with peers / alone, by the node's CPU time (peers on other machines)", cpu["alone"] / cpu["peered"]))
        rows.append(("  with peers / redis-server, by the node's CPU time (estimate)", cpu["alone"] / cpu["peered"] * alone / r))
        if all("cycles" in c for k in counters for c in counters[k]):
            per = {k: {e: statistics.median(c[e] for c in counters[k]) for e in ("cycles", "instructions")} for k in counters}
            rows.append(("node cycles per SET: alone", per["alone"]["cycles"]))
            rows.append(("node cycles per SET: with two peers", per["peered"]["cycles"]))
            rows.append(("node instructions per SET: alone", per["alone"]["instructions"]))
            rows.append(("node instructions per SET: with two peers", per["peered"]["instructions"]))
            rows.append(("  with peers / alone, by the node's cycles (peers on other machines)", per["alone"]["cycles"] / per["peered"]["cycles"]))
            rows.append(("  with peers / redis-server, by the node's cycles (estimate)", per["alone"]["cycles"] / per["peered"]["cycles"] * alone / r))
    finally:
        for server in mesh + [redis_server, lone]:
            server.stop()

    print(f"\nmeridian geo replication, 3-node mesh on loopback, {os.cpu_count()} cores\n")
    print("| measure | value |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value:,.2f} |")


if __name__ == "__main__":
    main()
