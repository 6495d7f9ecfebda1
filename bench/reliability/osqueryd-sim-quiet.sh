#!/bin/sh
# The osqueryd stand-in with its output sent to /dev/null instead of the
# supervisor's pipes. When a supervisor is SIGKILLed its pipes break and the
# stand-in (Node) dies of EPIPE on its next log line, so nothing would be left
# for the next start to reap; a real osqueryd that ignores SIGPIPE lives on.
# Used by the supervisor-kill scenario so the reaper really has orphans to kill.
exec "$(dirname "$0")/../../bin/osqueryd-sim" "$@" >/dev/null 2>&1
