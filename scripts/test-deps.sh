#!/usr/bin/env bash
# What the test suite needs beyond ./scripts/deps.sh: the redis-py client and cargo-nextest.
set -euo pipefail
if ! python3 -c 'import redis' 2>/dev/null; then
    python3 -m pip install -q redis 2>/dev/null || python3 -m pip install -q --break-system-packages redis
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
