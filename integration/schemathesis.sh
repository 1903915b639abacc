#!/usr/bin/env bash
# Runs schemathesis against a live Drover and fails on any server error (5xx),
# response that does not fit the OpenAPI document (schema, status code, content
# type, headers) or request that cannot be made.
#
#   integration/schemathesis.sh            (after `cargo build --bins`)
#
# Drover: `target/debug/drover serve --in-memory` on a free loopback port
# ($DROVER_BIN_DIR overrides where the binary is). No Mesos master is needed:
# the API stores apps and jobs without one (the master it names, a closed
# loopback port, is only retried). The document is Drover's own
# `/openapi.json`, generated from the router's route table.
#
# schemathesis (pinned below) is installed from PyPI with pip into a venv of its
# own, integration/.venv-schemathesis (ignored by git), only when it is missing;
# python3-venv comes from apt-get when needed (as root). The run is
# deterministic: a fixed seed, one worker, SCHEMATHESIS_EXAMPLES (default 40)
# examples per operation in the fuzzing phase after the coverage phase's
# boundary cases. It prints the number of generated test cases; the JUnit
# report is left in target/schemathesis/junit.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

version=4.32.5
examples=${SCHEMATHESIS_EXAMPLES:-40}
seed=${SCHEMATHESIS_SEED:-20261127}
venv=$root/integration/.venv-schemathesis
bin_dir=${DROVER_BIN_DIR:-$root/target/debug}
work=$(mktemp -d -t drover-schemathesis.XXXXXX)
drover_pid=
cleanup() {
  local status=$?
  if [[ -n $drover_pid ]]; then
    kill "$drover_pid" 2>/dev/null || true
    wait "$drover_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# schemathesis, pinned, in its own venv.
if [[ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != *"$version"* ]]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

# A live Drover on a free port.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
nobody=$(free_port) # nothing listens there: the Mesos master Drover keeps retrying
url=http://127.0.0.1:$port
args=(serve --in-memory --listen "127.0.0.1:$port" --master "http://127.0.0.1:$nobody")
# Authentication is on, as by default: every request carries an admin's
# bearer token from a credentials file made for this run.
auth=()
if "$bin_dir/drover" credentials add --help >/dev/null 2>&1; then
  token=$("$bin_dir/drover" credentials add schemathesis --role admin --file "$work/credentials")
  args+=(--credentials-file "$work/credentials")
  auth=(-H "Authorization: Bearer $token")
fi
"$bin_dir/drover" "${args[@]}" >"$work/drover.log" 2>&1 &
drover_pid=$!
for _ in $(seq 100); do
  curl -sS -o /dev/null "$url/ping" 2>/dev/null && break
  sleep 0.1
done
curl -fsS "${auth[@]}" "$url/openapi.json" -o "$work/openapi.json" || { cat "$work/drover.log"; exit 1; }

# Something to find: the document's example path parameters name these (app
# `web`, group `prod`, job `report`), so reads and writes of existing
# resources are tested too, not only 404s.
seed() {
  curl -fsS "${auth[@]}" -X POST "$url$1" -H 'Content-Type: application/json' -d "$2" -o /dev/null ||
    { echo "seeding $1 failed" >&2; cat "$work/drover.log" >&2; exit 1; }
}
seed /v2/apps '{"id": "/web", "cmd": "sleep 3600", "instances": 2, "labels": {"tier": "web"}}'
seed /v2/groups '{"id": "/prod", "apps": [{"id": "api", "cmd": "sleep 3600"}]}'
seed /v1/scheduler/iso8601 '{"name": "report", "command": "echo report", "schedule": "R/2030-01-01T00:00:00Z/P1D"}'
seed /v1/scheduler/dependency '{"name": "publish", "command": "echo publish", "parents": ["report"]}'

# Excluded: GET /v2/events only, a server-sent event stream that never ends
# (its frames are tested in sched-api's events tests). DELETE /v2/leader is
# included: with the in-memory store the instance ends its term and leads
# again at once, keeping its state.
report=$root/target/schemathesis/junit.xml
mkdir -p "$(dirname "$report")"
set +e
start=$(date +%s)
# (From the scratch dir: schemathesis keeps its replay cache in the working directory.)
(cd "$work" && "$venv/bin/schemathesis" --no-color run "$work/openapi.json" --url "$url" "${auth[@]}" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --exclude-path /v2/events \
  --phases examples,coverage,fuzzing \
  --mode all \
  --seed "$seed" \
  --max-examples "$examples" \
  --workers 1 \
  --rate-limit 150/s \
  --request-timeout 30 \
  --suppress-health-check all \
  --report junit --report-junit-path "$report") \
  2>&1 | tee "$work/schemathesis.log"
status=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - start))

# A panic that ends the process fails the run even if schemathesis missed it.
if ! kill -0 "$drover_pid" 2>/dev/null; then
  echo "drover serve exited during the run:" >&2
  tail -50 "$work/drover.log" >&2
  status=1
fi
# 401/403 and 429 are documented (authentication and rate limits apply to
# every route), so a run whose token or rate were wrong would pass while
# testing nothing behind them: schemathesis' warnings about them fail it.
# (--rate-limit keeps under the API's default of 200 requests/s per principal.)
if grep -E '(Rate limited|Authentication failed): [0-9]+ operation' "$work/schemathesis.log" >&2; then
  echo "schemathesis was refused (401/403/429) on whole operations: see above" >&2
  status=1
fi
if ((status != 0)); then
  echo "drover serve's log (last 40 lines):" >&2
  tail -40 "$work/drover.log" >&2
fi
cases=$(python3 - "$work/schemathesis.log" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
m = re.findall(r"Test cases:\s*(\d+) generated", text)
print(m[-1] if m else "unknown")
EOF
)
echo
echo "schemathesis $version: $cases test cases generated in ${elapsed}s (seed $seed, $examples examples per operation); exit status $status"
exit "$status"
