#!/usr/bin/env bash
# Runs every Drover test, on a fresh machine or a used one:
#   1. installs the Debian packages that are missing (apt-get, as root), Docker's
#      (`docker.io`, `busybox-static`) included, and the browser test's `chromium`
#      with playwright-core (`npm ci` in integration/e2e/browser);
#   2. starts a private Docker engine under the scratch dir (no bridge, no
#      iptables, vfs storage; integration/docker-test-env.sh), exports its
#      DOCKER_HOST and builds the local test image drover-test/busybox:latest;
#   3. fetches and builds the real Mesos 1.11 harness (integration/mesos-local);
#   4. checks formatting and clippy;
#   5. builds the binaries, fuzzes the parsers for 60 s per target
#      (integration/fuzz.sh), runs schemathesis against a live `drover serve`
#      and its /openapi.json (integration/schemathesis.sh) and runs the whole
#      workspace's tests: unit, property, golden, the Docker tier against that
#      engine, and the end-to-end tier
#      against real Mesos masters and agents, which the tests start and stop
#      themselves;
#   6. greps every log the tests left, and their output, for the test
#      secrets (integration/secret-grep.sh, integration/e2e/test-secrets.txt);
#   7. stops anything a failed test left behind, removes every container and
#      stops the Docker engine (by PID).
# It also starts ONE etcd (Debian's etcd-server) on free loopback ports with
# its data under the scratch dir, exports DROVER_TEST_ETCD for the tests
# (each works under its own key prefix), and stops it by PID at the end.
# Arguments go to the test runner, e.g. `integration/test.sh -E 'binary(jobs)'`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

# Everything the tests create lives under one directory this script owns.
scratch=$(mktemp -d -t drover-test.XXXXXX)
cleanup() {
  local status=$?
  # The test etcd (by PID).
  if [[ -s "$scratch/etcd/etcd.pid" ]]; then
    kill "$(cat "$scratch/etcd/etcd.pid")" 2>/dev/null || true
  fi
  # Clusters a crashed test could not stop (stop is idempotent, by PID).
  while IFS= read -r pidfile; do
    "$root/integration/mesos-local/mesos-local" stop --work-dir "$(dirname "$pidfile")" >/dev/null 2>&1 || true
  done < <(find "$scratch" -name mesos-local.pid 2>/dev/null)
  # Every container, then the engine (by PID); idempotent.
  "$root/integration/docker-test-env.sh" stop "$scratch/docker" || true
  rm -rf "$scratch"
  exit "$status"
}
trap cleanup EXIT
export TMPDIR=$scratch

step "install missing packages"
integration/mesos-local/mesos-local install-deps
integration/docker-test-env.sh install
# etcdctl too: this script and the etcd auth tests (scheduler/store/tests/etcd_security.rs) use it.
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client
fi
# The web UI's browser test (integration/e2e/tests/ui.rs): Debian's chromium, driven
# headless by playwright-core (which downloads no browser) on Node.js 20 or later.
browser_pkgs=()
command -v chromium >/dev/null || browser_pkgs+=(chromium)
command -v node >/dev/null || browser_pkgs+=(nodejs)
command -v npm >/dev/null || browser_pkgs+=(npm)
if ((${#browser_pkgs[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${browser_pkgs[@]}"
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' ||
  { echo "playwright-core needs Node.js 20 or later; found $(node --version)" >&2; exit 1; }
# playwright-core as locked in package-lock.json; installed again when the lock changes.
if ! cmp -s integration/e2e/browser/package-lock.json integration/e2e/browser/node_modules/.drover-lock; then
  (cd integration/e2e/browser && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.drover-lock)
fi

step "start a private Docker engine"
eval "$(integration/docker-test-env.sh start "$scratch/docker")"
export DOCKER_HOST
integration/docker-test-env.sh build-image

step "start the test etcd"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mkdir -p "$scratch/etcd"
etcd_client=$(free_port)
etcd_peer=$(free_port)
etcd --name default --data-dir "$scratch/etcd/data" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "default=http://127.0.0.1:$etcd_peer" >"$scratch/etcd/etcd.log" 2>&1 &
echo $! >"$scratch/etcd/etcd.pid"
export DROVER_TEST_ETCD=http://127.0.0.1:$etcd_client
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "$DROVER_TEST_ETCD" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
ETCDCTL_API=3 etcdctl --endpoints "$DROVER_TEST_ETCD" endpoint health || { cat "$scratch/etcd/etcd.log"; exit 1; }

step "build the real Mesos 1.11 harness"
integration/mesos-local/mesos-local build

step "format and lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --bins --locked
export DROVER_BIN_DIR=$root/target/debug

# A fixed time budget per fuzz target (issue 8); a crash fails the run. Skipped
# only when arguments pick some tests (a developer's filtered run).
if (($# == 0)); then
  step "fuzz the parsers (${DROVER_FUZZ_SECONDS:-60} s per target)"
  integration/fuzz.sh "${DROVER_FUZZ_SECONDS:-60}"
fi

# The REST API against its own OpenAPI document (/openapi.json): schemathesis
# on a live `drover serve`; a 5xx or a response that does not fit the document
# fails the run. Skipped, like the fuzzing, when arguments pick some tests.
if (($# == 0)); then
  step "schemathesis against a live Drover"
  integration/schemathesis.sh
fi

step "test"
# Every Mesos cluster and daemon the end-to-end tests start leaves its logs
# here when it stops; with the test output they are grepped for the test
# secrets afterwards.
export DROVER_E2E_LOG_ARCHIVE=$scratch/e2e-logs
mkdir -p "$DROVER_E2E_LOG_ARCHIVE"
test_status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$scratch/test-output.log" || test_status=$?
else
  cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$scratch/test-output.log" || test_status=$?
fi

step "grep the logs for secrets"
integration/secret-grep.sh "$DROVER_E2E_LOG_ARCHIVE" "$scratch/test-output.log"
exit "$test_status"
