#!/bin/sh
# Defragments the local etcd member when enough of its database file is free space; run by etcd-defrag.service.
#   etcd-defrag.sh --etcdctl BIN --endpoint URL --cacert FILE --cert FILE --key FILE --member NAME --threshold PERCENT [--lock NAME] [--lock-wait SECONDS]
# Each run logs to the journal (stdout) why it did nothing, in one line, or when it started and what it did:
#   etcd-cloudinit: etcd-defrag: etcd2: defragmenting: 74% reclaimable >= 50% (holding lock etcd-cloudinit-defrag)
#   etcd-cloudinit: etcd-defrag: etcd2: 48.2 MiB -> 12.1 MiB (74% reclaimable >= 50%)
#   etcd-cloudinit: etcd-defrag: etcd2: skipped: 3% reclaimable < 50%
#   etcd-cloudinit: etcd-defrag: etcd2: skipped: cluster unhealthy
# Rules:
# - reclaimable = (dbSize - dbSizeInUse) / dbSize, from `etcdctl endpoint status` of this member;
# - never while the cluster is unhealthy (`etcdctl endpoint health --cluster`: every member answers);
# - never two members at once: the defragmentation runs under etcd's own lock (`etcdctl lock`),
#   held by a lease, so a holder that dies releases it when its lease expires (60 s);
# - under the lock it checks health and the share again: the member before it may have changed both.
# Needs only POSIX sh, coreutils and etcdctl (3.4 or later).
set -eu

log() {
  echo "etcd-cloudinit: etcd-defrag: $member: $*"
}
die() {
  echo "etcd-cloudinit: etcd-defrag: $*" >&2
  exit 1
}

etcdctl='' endpoint='' cacert='' cert='' key='' member='' threshold='' lock='etcd-cloudinit-defrag' lock_wait=3600 locked=''
while [ $# -gt 0 ]; do
  case $1 in
    # Internal: the second half of a run, started by `etcdctl lock` while it holds the lock.
    --locked) locked=1; shift; continue ;;
  esac
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --etcdctl) etcdctl=$2 ;;
    --endpoint) endpoint=$2 ;;
    --cacert) cacert=$2 ;;
    --cert) cert=$2 ;;
    --key) key=$2 ;;
    --member) member=$2 ;;
    --threshold) threshold=$2 ;;
    --lock) lock=$2 ;;
    --lock-wait) lock_wait=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in etcdctl endpoint cacert cert key member threshold; do
  eval "value=\$$required"
  [ -n "$value" ] || die "--$required is required"
done
case $threshold in
  '' | *[!0-9]*) die "--threshold must be a whole percentage from 1 to 99, got $threshold" ;;
esac
[ "$threshold" -ge 1 ] && [ "$threshold" -le 99 ] || die "--threshold must be a whole percentage from 1 to 99, got $threshold"
case $lock_wait in
  '' | *[!0-9]* | 0) die "--lock-wait must be a positive whole number of seconds, got $lock_wait" ;;
esac

ctl() {
  ETCDCTL_API=3 "$etcdctl" --cacert="$cacert" --cert="$cert" --key="$key" "$@"
}

# Every member of the cluster answers (etcdctl asks the member list for their client URLs).
cluster_healthy() {
  ctl --endpoints="$endpoint" --dial-timeout=3s --command-timeout=5s endpoint health --cluster >/dev/null 2>&1
}

# Sets db_size and db_in_use (bytes) from this member's status; fails if it cannot be read.
read_status() {
  status=$(ctl --endpoints="$endpoint" --command-timeout=10s endpoint status -w json) || return 1
  db_size=$(printf '%s\n' "$status" | sed -n 's/.*"dbSize":\([0-9][0-9]*\).*/\1/p')
  db_in_use=$(printf '%s\n' "$status" | sed -n 's/.*"dbSizeInUse":\([0-9][0-9]*\).*/\1/p')
  [ -n "$db_size" ] && [ -n "$db_in_use" ] && [ "$db_size" -gt 0 ]
}

# 50331648 -> 48.0 MiB
mib() {
  tenths=$(($1 * 10 / 1048576))
  echo "$((tenths / 10)).$((tenths % 10)) MiB"
}

# Sets share (whole percent reclaimable) and returns 0 when it reaches the threshold.
over_threshold() {
  share=$(((db_size - db_in_use) * 100 / db_size))
  [ "$share" -ge "$threshold" ]
}

decide() {
  if ! cluster_healthy; then
    log 'skipped: cluster unhealthy'
    exit 0
  fi
  read_status || die "$member: cannot read the status of $endpoint"
  if ! over_threshold; then
    log "skipped: $share% reclaimable < $threshold%"
    exit 0
  fi
}

decide
if [ -z "$locked" ]; then
  # Wait for the lock (bounded); under it this script runs again with --locked and does the work.
  # The lock's key is under the lock name; its lease lives while etcdctl does (--ttl 60 after it dies).
  timeout "$lock_wait" env ETCDCTL_API=3 "$etcdctl" --endpoints="$endpoint" --cacert="$cacert" --cert="$cert" --key="$key" \
    lock --ttl=60 "$lock" -- "$0" --locked --lock "$lock" --etcdctl "$etcdctl" --endpoint "$endpoint" --cacert "$cacert" --cert "$cert" --key "$key" \
    --member "$member" --threshold "$threshold" || die "$member: no defragmentation: waiting for or holding the lock $lock failed (exit $?)"
  exit 0
fi

# Holding the lock: decide() above ran again, so the cluster is healthy and the share still over the threshold.
before=$db_size
# The member blocks its clients while it rewrites the file: the journal says from when.
log "defragmenting: $share% reclaimable >= $threshold% (holding lock $lock)"
ctl --endpoints="$endpoint" --command-timeout=10m defrag >/dev/null || die "$member: defrag of $endpoint failed"
read_status || die "$member: cannot read the status of $endpoint after defragmenting"
log "$(mib "$before") -> $(mib "$db_size") ($share% reclaimable >= $threshold%)"
