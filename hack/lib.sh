# Shared by the hack/ scripts: where local state lives and how its processes are stopped.
# shellcheck shell=bash
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$(mkdir -p "${STEVEDORE_LOCAL_DIR:-$repo/.local}" && cd "${STEVEDORE_LOCAL_DIR:-$repo/.local}" && pwd)

log() { echo "$(date +%H:%M:%S) $*" >&2; }

# True when the PID file names a live process whose command line mentions this state directory, so a PID
# reused by an unrelated process is never signalled.
ours() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$state"
}

# Stops the process of a PID file: SIGTERM, then SIGKILL after 10 s.
stop_pidfile() {
  local file=$1 pid
  if ours "$file"; then
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}
