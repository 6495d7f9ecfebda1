#!/usr/bin/env bash
# bench/thrift-peers-one-cpu: the ping scenarios of bench/thrift-peers with the client and every server on one
# CPU (taskset -c 0, inherited by all children), against the default run where the scheduler spreads them.
# It separates what a call costs from what waking a process on another, idle virtual CPU costs (ADR 0026).
# Results: bench/results/thrift-peers-one-cpu.{json,md}. Build first (bench/run does).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v taskset >/dev/null; then
  echo "thrift-peers-one-cpu: skipped, taskset (util-linux) missing" >&2
  exit 0
fi
export THRIFT_PEERS_NAME=thrift-peers-one-cpu
export THRIFT_PEERS_SERVERS="${THRIFT_PEERS_SERVERS:-project,bare,python}"
export THRIFT_PEERS_SCENARIOS="${THRIFT_PEERS_SCENARIOS:-ping_persistent,ping_per_call}"
exec taskset -c 0 node dist/bench/thrift-peers/driver.js "$@"
