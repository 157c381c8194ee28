#!/usr/bin/env bash
# Runs every HumanPing test: the Rust unit and integration tests against SQLite and PostgreSQL,
# the worker web app in headless Chromium, then the end-to-end tests that drive the built binary
# with real MCP clients (Python).
#
#     scripts/test.sh
#
# One debug build is shared by every stage. When HUMANPING_TEST_POSTGRES_URL is not set, a
# throwaway PostgreSQL is started on 127.0.0.1 (scripts/pg-throwaway.sh) and removed at exit;
# the PostgreSQL leg is required, so a missing database fails the tests instead of skipping them.
# Progress lines go to stderr; stdout carries only the test runners' own output, and ends with
# pytest's summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-auto}

# shellcheck source=scripts/pg-throwaway.sh
source "$ROOT/scripts/pg-throwaway.sh"

STARTED=$SECONDS
STAGE_STARTED=$SECONDS
FAILED=()

stage() {
    STAGE_STARTED=$SECONDS
    printf '\n==> %s\n' "$*" >&2
}

stage_done() {
    printf '<== %s (%ss)\n' "$*" "$((SECONDS - STAGE_STARTED))" >&2
}

die() {
    printf 'test.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local status=$?
    pg_throwaway_stop
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v cargo >/dev/null 2>&1 || die "cargo is not installed (https://rustup.rs)"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed; the end-to-end tests need it"

# 1. Build: every target once, in the debug profile, from the committed Cargo.lock.
stage "build: cargo build --all-targets --locked"
cargo build --all-targets --locked || die "build"
HUMANPING_BIN=$TARGET_DIR/debug/humanping
[[ -x $HUMANPING_BIN ]] || die "build: $HUMANPING_BIN was not produced"
export HUMANPING_BIN
stage_done "build ok"

# 2. PostgreSQL: the one given, or a throwaway one.
if [[ -n ${HUMANPING_TEST_POSTGRES_URL:-} ]]; then
    stage "postgres: using HUMANPING_TEST_POSTGRES_URL from the environment"
else
    stage "postgres: starting a throwaway cluster on 127.0.0.1"
    pg_throwaway_start || die "postgres: could not start PostgreSQL"
fi
export HUMANPING_REQUIRE_POSTGRES=1
stage_done "postgres ready"

# 3. Rust tests, against SQLite and PostgreSQL.
if cargo nextest --version >/dev/null 2>&1; then
    # Defaults below the repository's own .config/nextest.toml, if it ever has one: a test
    # still running after 10 minutes is reported and killed instead of eating CI's time limit.
    NEXTEST_DEFAULTS=$TARGET_DIR/test-sh/nextest.toml
    mkdir -p "${NEXTEST_DEFAULTS%/*}"
    cat >"$NEXTEST_DEFAULTS" <<'TOML'
[profile.default]
slow-timeout = { period = "60s", terminate-after = 10 }
TOML
    stage "rust tests: cargo nextest run --locked --no-fail-fast"
    rust_tests=(cargo nextest run --locked --no-fail-fast
        --tool-config-file "humanping-test-sh:$NEXTEST_DEFAULTS")
else
    stage "rust tests: cargo test --locked --no-fail-fast (cargo-nextest not installed)"
    rust_tests=(cargo test --locked --no-fail-fast)
fi
if "${rust_tests[@]}"; then
    stage_done "rust tests passed"
else
    FAILED+=("rust tests")
    stage_done "rust tests FAILED"
fi

# 3b. Fuzzing, for a bounded time per target (FUZZ_SECONDS, default 60); skipped with a line on
#     stderr only when the nightly toolchain cannot be installed.
stage "fuzz: scripts/fuzz.sh (${FUZZ_SECONDS:-60}s per target)"
if "$ROOT/scripts/fuzz.sh"; then
    stage_done "fuzz done"
else
    FAILED+=("fuzz")
    stage_done "fuzz FAILED"
fi

# 4. The worker web app in a real headless Chromium: Debian's package, driven by playwright-core
#    from tests/browser (no browser download). It runs before pytest, whose summary ends the output.
stage "browser setup: Debian's chromium and playwright-core in tests/browser"
if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 \
            || die "browser setup: apt-get install chromium failed"
    else
        die "browser setup: /usr/bin/chromium is missing (apt-get install chromium)"
    fi
fi
command -v node >/dev/null 2>&1 || die "browser setup: node is not installed"
command -v npm >/dev/null 2>&1 || die "browser setup: npm is not installed"
npm ci --prefix "$ROOT/tests/browser" --no-audit --no-fund --ignore-scripts --loglevel=error >&2 \
    || die "browser setup: npm ci in tests/browser failed"
stage_done "browser setup ok"

stage "browser tests: node --test tests/browser (screenshots in $TARGET_DIR/browser-screenshots)"
# Node's own summary goes to stdout; the server's log, on a failure, to stderr.
if HUMANPING_SCREENSHOTS=$TARGET_DIR/browser-screenshots node --test --test-reporter=spec \
    "$ROOT"/tests/browser/*.test.mjs; then
    stage_done "browser tests passed"
else
    FAILED+=("browser tests")
    stage_done "browser tests FAILED"
fi

# 5. End-to-end tests with real MCP clients, in a virtualenv kept under target/.
stage "e2e setup: virtualenv, tests/e2e/requirements.txt and requirements-schemathesis.txt"
VENV=$TARGET_DIR/e2e-venv
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >&2; then
        # Debian's own python3 ships venv separately.
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            rm -rf "$VENV"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
            python3 -m venv "$VENV" >&2 || die "e2e setup: python3 -m venv failed"
        else
            die "e2e setup: python3 -m venv failed (install python3-venv)"
        fi
    fi
fi
# One pip command for both files, so their pins are resolved together.
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
    -r "$ROOT/tests/e2e/requirements.txt" \
    -r "$ROOT/tests/e2e/requirements-schemathesis.txt" >&2 || die "e2e setup: pip install failed"
# The Python client from its folder, built with the pinned hatchling above (nothing fetched).
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --no-build-isolation \
    --no-deps --force-reinstall "$ROOT/examples/python" >&2 \
    || die "e2e setup: pip install ./examples/python failed"
# LangChain's MCP adapters need mcp 1.x: the LangChain example runs in a virtualenv of its own.
LANGCHAIN_VENV=$TARGET_DIR/langchain-venv
if ! "$LANGCHAIN_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$LANGCHAIN_VENV"
    python3 -m venv "$LANGCHAIN_VENV" >&2 || die "e2e setup: python3 -m venv $LANGCHAIN_VENV failed"
fi
"$LANGCHAIN_VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
    -r "$ROOT/examples/langchain/requirements.txt" >&2 \
    || die "e2e setup: pip install -r examples/langchain/requirements.txt failed"
export HUMANPING_LANGCHAIN_PYTHON=$LANGCHAIN_VENV/bin/python
stage_done "e2e setup ok"

stage "e2e setup: Node tools (MCP Inspector, conformance suite, Node 22) in tests/node"
command -v npm >/dev/null 2>&1 || die "e2e setup: npm is not installed; the Inspector and conformance tests need it"
# Lifecycle scripts are skipped: the tools run as installed, and nothing is downloaded at run time.
npm ci --prefix "$ROOT/tests/node" --no-audit --no-fund --ignore-scripts --loglevel=error >&2 \
    || die "e2e setup: npm ci in tests/node failed"
export HUMANPING_NODE_TOOLS=$ROOT/tests/node
stage_done "node tools ok"

stage "e2e tests: pytest -v tests/e2e (HUMANPING_BIN=$HUMANPING_BIN)"
pytest_status=0
# A hung test fails after 10 minutes, with its stack, instead of running into CI's limit.
"$VENV/bin/python" -m pytest -v --timeout=600 tests/e2e || pytest_status=$?
case $pytest_status in
    0) ;;
    5) FAILED+=("e2e tests (pytest collected no tests)") ;;
    *) FAILED+=("e2e tests (pytest exit $pytest_status)") ;;
esac

# The output ends with pytest's summary when everything passed; otherwise with what failed.
if ((${#FAILED[@]} > 0)); then
    failed=$(IFS=';'; printf '%s' "${FAILED[*]}")
    printf '\ntest.sh: FAILED after %ss: %s\n' "$((SECONDS - STARTED))" "${failed//;/, }" >&2
    exit 1
fi
