#!/usr/bin/env bash
# Stop the one-node Slurm that scripts/slurm-up.sh started (jobs first, then the daemons).
# Keeps the packages and the state dir; `--wipe` also removes the state dir.
set -uo pipefail

STATE=${TUIEXP_SLURM_DIR:-/tmp/tuiexp-slurm}
export SLURM_CONF=$STATE/slurm.conf

# shellcheck source=scripts/slurm-common.sh
source "$(dirname "$0")/slurm-common.sh"

stop_pid() {
    local f=$1 name=$2 pid
    alive "$f" || return 0
    pid=$(cat "$f")
    echo "slurm-down: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$f" || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

if [[ -f $SLURM_CONF ]] && command -v scancel >/dev/null; then
    scancel --full --signal=KILL --state=RUNNING -u root >/dev/null 2>&1 || true
    scancel -u root >/dev/null 2>&1 || true
fi
stop_pid "$STATE/run/slurmd.pid" slurmd
stop_pid "$STATE/run/slurmctld.pid" slurmctld
stop_pid "$STATE/run/slurmdbd.pid" slurmdbd
stop_pid /run/mysqld/mysqld.pid mariadbd
stop_pid /run/munge/munged.pid munged
if [[ "${1:-}" == "--wipe" ]]; then
    rm -rf "$STATE"
    echo "slurm-down: removed $STATE"
fi
