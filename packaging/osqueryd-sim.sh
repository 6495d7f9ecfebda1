#!/bin/sh
# /opt/osquery-launcher/bin/osqueryd-sim (osquery-launcher package): the osqueryd stand-in,
# for demos and smoke tests only, run with the bundled Node.js. Set osqueryd_path to this
# file to use it; "auto" never finds it. Finds the package tree from its own path.
case "$0" in
  */bin/osqueryd-sim) prefix="${0%/bin/osqueryd-sim}" ;;
  */*) prefix="${0%/*}/.." ;;
  *) prefix=.. ;;
esac
exec "$prefix/node/bin/node" "$prefix/app/bin/osqueryd-sim" "$@"
