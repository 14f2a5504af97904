#!/usr/bin/env bash
# Install and start a one-node SLURM cluster on loopback, for tests/workflow/test_slurm.py.
# Needs root and Debian (apt); no systemd, no cgroups, no accounting (slurmdbd): the slurm
# profile's `slurm-status-command: squeue` is what makes Snakemake's executor work here.
# Every step is bounded by `timeout`. The daemons' PIDs are written to $SLURM_CI_DIR/*.pid
# (default /run/scingest-slurm); .ci/slurm-down.sh stops them by those PIDs.
# Adapted from shared/recipes/slurm-local.sh.
set -euo pipefail
STATE=${SLURM_CI_DIR:-/run/scingest-slurm}
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm-up: needs root (apt-get, munged, slurmd)" >&2
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sinfo >/dev/null || ! command -v munged >/dev/null; then
    timeout 300 apt-get update -qq
    timeout 600 apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi

if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "slurm-up: a cluster already answers; not starting another"
    sinfo
    exit 0
fi

install -d -m 755 "$STATE"
install -d -o munge -g munge -m 755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    timeout 60 /usr/sbin/mungekey --create --force 2>/dev/null \
        || timeout 60 dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
fi
timeout 30 runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
for _ in $(seq 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.5; done
cp /run/munge/munged.pid "$STATE/munged.pid"
timeout 10 bash -c 'munge -n | unmunge >/dev/null'

# Leave 512 MiB to the OS; every job's mem_mb must fit RealMemory or it never starts.
MEM=$(($(free -m | awk '/^Mem:/{print $2}') - 512))
install -d /etc/slurm
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Memory is enforced without cgroups: slurmd samples each step's RSS every second and
# kills a step that uses more than its job asked for (the job ends OUT_OF_MEMORY), as
# cgroup-enforcing production clusters do. tests/workflow/test_slurm.py's retry test relies on it.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
install -d -o slurm -g slurm /var/log/slurm /var/lib/slurm /var/lib/slurm/slurmctld
install -d /var/lib/slurm/slurmd
timeout 30 /usr/sbin/slurmctld
timeout 30 /usr/sbin/slurmd
for _ in $(seq 60); do
    sinfo -h -o %t 2>/dev/null | grep -qx idle && break
    sleep 1
done
timeout 10 sinfo
sinfo -h -o %t | grep -qx idle || {
    echo "slurm-up: node did not become idle in 60 s; see /var/log/slurm/" >&2
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    exit 1
}
echo "slurm-up: cluster ready; PIDs in $STATE"
