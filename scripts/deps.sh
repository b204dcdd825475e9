#!/usr/bin/env bash
# Installs what building, running and testing Meridian needs on a fresh Debian/Ubuntu machine,
# skipping whatever is already there. Sourced by ./run and ./test.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || missing+=(redis-tools)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
# RocksDB's C++ is built from source (the flash tier); bindgen needs libclang for its bindings.
command -v clang >/dev/null || missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts a redis-server service on install; Meridian's default port is the same one.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
    as_root systemctl stop redis-server || true
fi

if ! command -v cargo >/dev/null; then
    echo "Rust is required: https://rustup.rs (curl --proto '=https' -sSf https://sh.rustup.rs | sh)" >&2
    exit 1
fi
