#!/usr/bin/env bash
# A one-node Slurm on this machine (Debian, root, no systemd), for tests and the bench.
#
#   scripts/slurm-up.sh [--accounting]      install when missing, configure, start, wait idle
#   scripts/slurm-down.sh                   stop what this started
#
# Idempotent: daemons already up stay up (restarted only when the config changed).
# Everything lives in $TUIEXP_SLURM_DIR (default /tmp/tuiexp-slurm); the config is also
# linked at /etc/slurm/slurm.conf (Debian's default path) unless another config is there.
# --accounting adds slurmdbd + MariaDB, so `sacct` answers.
set -euo pipefail

STATE=${TUIEXP_SLURM_DIR:-/tmp/tuiexp-slurm}
ACCOUNTING=${TUIEXP_SLURM_ACCOUNTING:-0}
[[ "${1:-}" == "--accounting" ]] && ACCOUNTING=1
MARK="# written by tuiexp scripts/slurm-up.sh"

say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (it installs packages and starts daemons)."

# shellcheck source=scripts/slurm-common.sh
source "$(dirname "$0")/slurm-common.sh"

wait_until() {  # wait_until SECONDS WHAT CMD...
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        (( SECONDS - start < limit )) || die "$what did not come up within ${limit} s."
        sleep 0.2
    done
}

# -- packages ---------------------------------------------------------------------------
need=()
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v sbatch >/dev/null || need+=(slurm-client)
command -v munged >/dev/null || need+=(munge)
if [[ $ACCOUNTING == 1 ]]; then
    command -v slurmdbd >/dev/null || need+=(slurmdbd)
    command -v mariadbd >/dev/null || need+=(mariadb-server)
fi
if (( ${#need[@]} )); then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$STATE"/{spool,slurmd,log,run}
chmod 755 "$STATE"

# -- munge ------------------------------------------------------------------------------
[[ -f /etc/munge/munge.key ]] || { mungekey --create >/dev/null 2>&1 || \
    { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }; }
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! alive /run/munge/munged.pid; then
    say "starting munged"
    runuser -u munge -- munged --force --pid-file=/run/munge/munged.pid
fi
wait_until 10 munged bash -c 'munge -n | unmunge'

# -- the configuration ------------------------------------------------------------------
host=$(hostname -s)
node=$(slurmd -C | head -n1)
conf=$STATE/slurm.conf
new=$(mktemp)
cat >"$new" <<EOF
$MARK
ClusterName=tuiexp
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
KillWait=5
MinJobAge=3600
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$STATE/spool
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
if [[ $ACCOUNTING == 1 ]]; then
    cat >>"$new" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
EOF
fi
changed=0
if ! cmp -s "$new" "$conf"; then
    mv "$new" "$conf"
    changed=1
else
    rm -f "$new"
fi
chmod 644 "$conf"
mkdir -p /etc/slurm
if [[ ! -e /etc/slurm/slurm.conf ]] || grep -q "$MARK" /etc/slurm/slurm.conf; then
    ln -sf "$conf" /etc/slurm/slurm.conf
else
    say "/etc/slurm/slurm.conf is someone else's; use SLURM_CONF=$conf"
fi
export SLURM_CONF=$conf

stop_pid() {  # TERM a daemon by its pid file and wait until it is gone (or a zombie)
    local f=$1 pid
    alive "$f" || return 0
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$f" || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}
if [[ $changed == 1 ]]; then
    stop_pid "$STATE/run/slurmd.pid"
    stop_pid "$STATE/run/slurmctld.pid"
fi

# -- accounting: MariaDB and slurmdbd ---------------------------------------------------
if [[ $ACCOUNTING == 1 ]]; then
    mkdir -p /run/mysqld /var/log/mysql && chown mysql:mysql /run/mysqld /var/log/mysql
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        say "initialising MariaDB"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    if ! alive /run/mysqld/mysqld.pid; then
        say "starting mariadbd"
        setsid mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
            --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 \
            </dev/null >"$STATE/log/mariadb.log" 2>&1 &
    fi
    wait_until 30 mariadbd mariadb -e "SELECT 1"
    mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'tuiexp';
                GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
    dbconf=$STATE/slurmdbd.conf  # slurmdbd reads it beside $SLURM_CONF
    cat >"$dbconf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=tuiexp
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$dbconf"
    if ! alive "$STATE/run/slurmdbd.pid"; then
        say "starting slurmdbd"
        slurmdbd
    fi
    wait_until 30 slurmdbd sacctmgr -n list cluster
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx tuiexp; then
        sacctmgr -i add cluster tuiexp >/dev/null
    fi
fi

# -- slurmctld and slurmd ----------------------------------------------------------------
if ! alive "$STATE/run/slurmctld.pid"; then
    say "starting slurmctld"
    slurmctld
fi
wait_until 20 slurmctld scontrol ping
if ! alive "$STATE/run/slurmd.pid"; then
    say "starting slurmd"
    slurmd
fi
nodename=$(echo "$node" | sed -n 's/^NodeName=\([^ ]*\).*/\1/p')
idle() { sinfo -h -n "$nodename" -o %T | grep -Eq '^(idle|mixed|allocated)'; }
for _ in $(seq 50); do
    idle && break
    state=$(sinfo -h -n "$nodename" -o %T 2>/dev/null || true)
    if [[ $state == down* || $state == drain* ]]; then
        scontrol update NodeName="$nodename" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 0.2
done
wait_until 20 "node $nodename" idle
say "node $nodename is $(sinfo -h -n "$nodename" -o %T); config $conf;" \
    "accounting $([[ $ACCOUNTING == 1 ]] && echo on || echo off); logs $STATE/log"
