#!/usr/bin/env bash
# Stop the daemons .ci/slurm-up.sh started, by the PIDs it wrote (never by name).
set -uo pipefail
STATE=${SLURM_CI_DIR:-/run/scingest-slurm}
for daemon in slurmd slurmctld munged; do
    pidfile=$STATE/$daemon.pid
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # a stale file may name a PID that now belongs to another process: check its name
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$daemon" ]; then
        rm -f "$pidfile"
        continue
    fi
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        echo "slurm-down: stopped $daemon ($pid)"
    fi
    rm -f "$pidfile"
done
