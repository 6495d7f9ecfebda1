#!/usr/bin/env bash
# bench/thrift-peers: builds the Apache Thrift peers (setup.sh, called by the driver) and runs the
# driver from dist/ (build first: npx tsc -p .). Results: bench/results/thrift-peers.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec node dist/bench/thrift-peers/driver.js "$@"
