#!/usr/bin/env bash
# Fuzzes HumanPing's input paths with cargo-fuzz (libFuzzer) for a bounded time per target:
# money parsing, task requests, raw bodies sent to the REST routes and to /mcp, and raw bytes
# read by the stdio transport.
#
#     scripts/fuzz.sh               # every target, FUZZ_SECONDS (default 60) each
#     FUZZ_SECONDS=600 scripts/fuzz.sh http_input
#
# Needs the nightly toolchain (installed with rustup when missing) and cargo-fuzz (installed
# from crates.io when missing). When nightly cannot be had, it says so on stderr and skips,
# exiting 0. A crash fails the run; its input is kept under fuzz/artifacts/TARGET/ and
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…` replays it.
# Everything this prints goes to stderr.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    TARGETS=(money task_request http_input stdio_input)
fi

say() {
    printf 'fuzz: %s\n' "$*" >&2
}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "the nightly toolchain is missing; installing it with rustup"
    if ! rustup toolchain install nightly --profile minimal >&2; then
        say "SKIPPED: the nightly toolchain is not installed and rustup could not install it;"
        say "cargo-fuzz needs nightly (rustup toolchain install nightly)"
        exit 0
    fi
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked >&2
fi

cd "$ROOT/fuzz"
say "building the fuzz targets (nightly, address sanitizer; the first build is slow)"
cargo +nightly fuzz build >&2

status=0
for target in "${TARGETS[@]}"; do
    corpus=$ROOT/fuzz/target/corpus/$target
    mkdir -p "$corpus"
    say "$target: ${SECONDS_EACH}s"
    if ! cargo +nightly fuzz run "$target" "$corpus" "$ROOT/fuzz/seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 >&2; then
        say "$target: FAILED; the input is in fuzz/artifacts/$target/ (turn it into a regression test)"
        status=1
    fi
done
exit "$status"
