#!/usr/bin/env python3
"""A model of the flash tier's admission filter under bench/flash.py's zipfian load, round by round.

No server runs: the model replays the load (zipfian s = 0.99 over 1,000,000 keys, 90% GET and
10% SET, rounds of 200,000 requests) against a RAM of a fixed number of keys, spilled least
recently used first down to 95% (as `reclaim.rs` does), right after a bulk load that left the
last keys written in RAM. It counts, per request, the cold reads (a RocksDB read each) and the
promotions (a RocksDB read and delete, and a later spill) that two admission rules cause:

- `fixed`: a cold read promotes its key if the key was read cold within the last million
  marks (the previous rule);
- `adaptive`: the span is as many marks as RAM holds keys, and a first read promotes while
  most recently spilled keys had never been used (server/src/keyspace/admission.rs).

Round 1 is bench/flash.py's untimed warm pass; its measured rounds are 2 on. The model's counts
matched the server's INFO flash counts to within a few percent (docs/benchmarks.md).

    python3 bench/admission_sim.py                 # both rules, 12 rounds, 127,000 keys in RAM
    python3 bench/admission_sim.py --ram-keys 144000 --rounds 6

Needs numpy.
"""

import argparse
import heapq
import random

import numpy as np

INITIAL = 5  # Redis's LFU_INIT_VAL: the count of a key no command has used


def simulate(rule, ram_keys, rounds, keys=1_000_000, per_round=200_000, seed=1):
    rng = np.random.default_rng(seed)
    coin = random.Random(seed)
    weights = np.cumsum(1.0 / np.arange(1, keys + 1) ** 0.99)
    weights /= weights[-1]
    # key -> [last use, LFU count]; the bulk load left the last keys written in RAM, unused.
    ram = {k: [-20_000, INITIAL] for k in range(keys - ram_keys, keys)}
    cold = {k: (-20_000, INITIAL) for k in range(keys - ram_keys)}
    marked, span = set(), (ram_keys if rule == "adaptive" else 1 << 20)
    unused_share = 1.0

    def use(count):
        base = max(0, count - INITIAL)
        return count + 1 if base == 0 or coin.random() < 1 / (base * 10 + 1) else count

    def spill():
        nonlocal unused_share
        victims = heapq.nsmallest(len(ram) - int(ram_keys * 0.95), ram.items(), key=lambda kv: kv[1][0])
        for key, stamps in victims:
            cold[key] = tuple(stamps)
            del ram[key]
        unused_share = sum(stamps[1] <= INITIAL for _, stamps in victims) / len(victims)

    def admits(key):
        nonlocal marked
        if key in marked:
            return True
        marked.add(key)
        if len(marked) >= span:
            marked = set()
        return rule == "adaptive" and unused_share > 0.5

    out, now = [], 0
    for _ in range(rounds):
        drawn = np.searchsorted(weights, rng.random(per_round))
        writes = rng.random(per_round) < 0.1
        reads = promotions = 0
        for key, write in zip(drawn.tolist(), writes.tolist()):
            now += 1
            at = now // 77  # ms, at about 77,000 requests/s
            if key in ram:
                ram[key][1] = use(ram[key][1])
                ram[key][0] = at
                continue
            reads += 1
            if write or admits(key):
                promotions += 1
                _, count = cold.pop(key)
                ram[key] = [at, use(count)]
                if len(ram) > ram_keys:
                    spill()
        out.append((reads / per_round, promotions / per_round))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ram-keys", type=int, default=127_000)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    print(f"{args.ram_keys:,} keys in RAM; cold reads / promotions per request, round by round\n")
    print("| round | " + " | ".join(f"{rule}" for rule in ("fixed", "adaptive")) + " |")
    print("|---:|---|---|")
    rows = [simulate(rule, args.ram_keys, args.rounds) for rule in ("fixed", "adaptive")]
    for r in range(args.rounds):
        print(f"| {r + 1} | " + " | ".join(f"{row[r][0]:.3f} / {row[r][1]:.3f}" for row in rows) + " |")


if __name__ == "__main__":
    main()
