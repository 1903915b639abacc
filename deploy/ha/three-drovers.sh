#!/usr/bin/env bash
# Three Drover instances sharing one etcd, against one local Mesos 1.11 master.
#
#   cargo build --bins && deploy/ha/three-drovers.sh
#
# One instance leads (GET /v2/leader on any of them names it); the others
# forward every API request to it, adding X-Marathon-Leader / X-Marathon-Via.
# Kill the leader (kill <pid>) and watch another take over within the lease
# TTL. Ctrl-C stops everything this script started (by PID).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$(mktemp -d -t drover-ha.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$root/integration/mesos-local/mesos-local" stop --work-dir "$work/mesos" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  echo "stopped; logs were in $work"
}
trap cleanup EXIT INT TERM

etcd --data-dir "$work/etcd" --name default \
  --listen-client-urls http://127.0.0.1:2479 --advertise-client-urls http://127.0.0.1:2479 \
  --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
  --initial-cluster default=http://127.0.0.1:2480 >"$work/etcd.log" 2>&1 &
pids+=($!)

integration/mesos-local/mesos-local start --work-dir "$work/mesos" --port 5050

# One admin principal for all three (standbys pass the credentials on to the leader).
token=$(target/debug/drover credentials add admin --role admin --file "$work/credentials")

for port in 8081 8082 8083; do
  target/debug/drover serve --master http://127.0.0.1:5050 --listen "127.0.0.1:$port" \
    --etcd http://127.0.0.1:2479 --leader-ttl-secs 5 --credentials-file "$work/credentials" \
    --executor-path "$root/target/debug/drover-executor" >"$work/drover-$port.log" 2>&1 &
  pids+=($!)
  echo "drover on 127.0.0.1:$port (pid $!, log $work/drover-$port.log)"
done
sleep 3
echo "token:  $token"
echo "leader: $(curl -s -u "$token" 127.0.0.1:8081/v2/leader)"
echo "try:    curl -u '$token' -X POST 127.0.0.1:8082/v2/apps -d @deploy/examples/sleepy.json"
wait
