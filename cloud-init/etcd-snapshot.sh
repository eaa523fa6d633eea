#!/bin/sh
# Saves a snapshot of the local etcd member and keeps the newest N; run by etcd-snapshot.service.
#   etcd-snapshot.sh --etcdctl BIN --endpoint URL --cacert FILE --cert FILE --key FILE --dir DIR --member NAME --retain N
# Restore a snapshot: see docs/day2.md ("Restore from a snapshot").
set -eu

die() {
  echo "etcd-cloudinit: etcd-snapshot: $*" >&2
  exit 1
}

etcdctl='' endpoint='' cacert='' cert='' key='' dir='' member='' retain=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --etcdctl) etcdctl=$2 ;;
    --endpoint) endpoint=$2 ;;
    --cacert) cacert=$2 ;;
    --cert) cert=$2 ;;
    --key) key=$2 ;;
    --dir) dir=$2 ;;
    --member) member=$2 ;;
    --retain) retain=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in etcdctl endpoint cacert cert key dir member retain; do
  eval "value=\$$required"
  [ -n "$value" ] || die "--$required is required"
done
case $retain in
  '' | *[!0-9]* | 0) die "--retain must be a positive whole number, got $retain" ;;
esac

# UTC timestamps sort in time order, so the oldest files are first in `ls` order.
target="$dir/etcd-$member-$(date -u +%Y%m%dT%H%M%SZ).db"
# etcdctl writes <target>.part and renames it when the snapshot is complete.
ETCDCTL_API=3 "$etcdctl" --endpoints="$endpoint" --cacert="$cacert" --cert="$cert" --key="$key" \
  --command-timeout=5m snapshot save "$target" || die "snapshot save failed; keeping the existing snapshots"

count=$(ls -1 "$dir" | grep -c "^etcd-$member-.*\.db\$" || true)
if [ "$count" -gt "$retain" ]; then
  ls -1 "$dir" | grep "^etcd-$member-.*\.db\$" | sort | head -n "$((count - retain))" | while read -r old; do
    rm -f -- "$dir/$old"
  done
fi
echo "etcd-cloudinit: saved $target; keeping the newest $retain snapshot(s) in $dir"
