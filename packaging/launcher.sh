#!/bin/sh
# /usr/bin/launcher (osquery-launcher package): runs the launcher with the Node.js runtime
# shipped in the package, whatever Node.js the system has (or lacks).
# OSQUERY_LAUNCHER_PREFIX points it at a relocated tree (e.g. an extracted package).
prefix="${OSQUERY_LAUNCHER_PREFIX:-/opt/osquery-launcher}"
if [ "${1:-}" = ctl ] && [ -z "${LAUNCHER_CTL_CONFIG:-}" ] && [ -r /etc/osquery-launcher/control/ctl.json ]; then
  # The admin client config written by the package's `launcher certs init`.
  LAUNCHER_CTL_CONFIG=/etc/osquery-launcher/control/ctl.json
  export LAUNCHER_CTL_CONFIG
fi
# --max-semi-space-size=2: small young generation, small idle footprint (adr/0012-recovery-and-idle-footprint.md).
# --interrupt-budget=270336: start-up code is not optimized, ~5 MB less idle RSS (adr/0024-idle-footprint.md).
exec "$prefix/node/bin/node" --max-semi-space-size=2 --interrupt-budget=270336 "$prefix/app/bin/launcher" "$@"
