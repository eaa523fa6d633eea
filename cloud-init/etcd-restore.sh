#!/bin/sh
# Restores this member's data dir from a snapshot in object storage, at first boot and before
# etcd's first start; run by cloud-init (runcmd) on the members `etcd-cloudinit restore` made.
#   etcd-restore.sh --url-file FILE --sha256 HEX --name NAME --initial-cluster LIST
#       --initial-advertise-peer-urls URL --initial-cluster-token TOKEN --data-dir DIR --user USER
#       (--etcdutl BIN | --etcdctl BIN)
# The URL (presigned, it expires) is read from a root-only file and given to curl on its standard
# input, so it is on no command line. A snapshot whose SHA-256 differs from the one the
# workstation read from the bucket is refused, and so is a data dir that already holds a member:
# this script never touches existing data. Any failure exits 1, and cloud-init's runcmd then
# stops before etcd is enabled or started.
set -eu

say() {
  echo "etcd-cloudinit: etcd-restore: $*"
}

die() {
  echo "etcd-cloudinit: etcd-restore: FAILED: $*; etcd is not started" >&2
  exit 1
}

url_file='' sha256='' name='' initial_cluster='' peer_urls='' token='' data_dir='' user='' etcdutl='' etcdctl=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --url-file) url_file=$2 ;;
    --sha256) sha256=$2 ;;
    --name) name=$2 ;;
    --initial-cluster) initial_cluster=$2 ;;
    --initial-advertise-peer-urls) peer_urls=$2 ;;
    --initial-cluster-token) token=$2 ;;
    --data-dir) data_dir=$2 ;;
    --user) user=$2 ;;
    --etcdutl) etcdutl=$2 ;;
    --etcdctl) etcdctl=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in url_file sha256 name initial_cluster peer_urls token data_dir user; do
  eval "value=\$$required"
  [ -n "$value" ] || die "--$(echo "$required" | tr _ -) is required"
done
[ -n "$etcdutl$etcdctl" ] || die "--etcdutl or --etcdctl is required"
case $sha256 in *[!0-9a-f]*) die "--sha256 must be 64 lowercase hex digits, got $sha256" ;; esac
[ ${#sha256} -eq 64 ] || die "--sha256 must be 64 lowercase hex digits, got $sha256"

# The URL is good for one download: it leaves the node whether the restore works or not.
trap 'rm -f "$url_file"' EXIT

if [ -e "$data_dir/member" ]; then
  die "$data_dir/member exists; a restore never touches an existing data dir (move it away by hand if it is really to be replaced)"
fi
[ -r "$url_file" ] || die "cannot read $url_file (the snapshot's URL)"
url=$(head -n 1 "$url_file")

parent=$(dirname "$data_dir")
mkdir -p "$parent"
# Next to the data dir, so the restored member moves into place with a rename.
work=$(mktemp -d "$parent/.etcd-restore.XXXXXX")
trap 'rm -rf "$work"; rm -f "$url_file"' EXIT

say "downloading the snapshot for member $name"
printf 'url = "%s"\n' "$url" | curl -q -fsS --config - --connect-timeout 20 --max-time 3600 --retry 5 --retry-delay 5 \
  -o "$work/snapshot.db" 2>"$work/curl.err" || die "download failed: $(head -c 300 "$work/curl.err" | tr '\n' ' ') (an expired URL answers 403: run etcd-cloudinit restore again for a fresh one)"
actual=$(sha256sum "$work/snapshot.db" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
  die "checksum mismatch: the downloaded snapshot has sha256 $actual, the bucket recorded $sha256 at upload; not restoring a damaged or altered snapshot"
fi
say "snapshot checked: sha256 $actual ($(wc -c <"$work/snapshot.db") bytes)"

# A new member, with this cluster's own name, peer URL, initial-cluster and token: the data is the
# snapshot's, the cluster ID is new.
if [ -n "$etcdutl" ]; then
  "$etcdutl" snapshot restore "$work/snapshot.db" --name "$name" --initial-cluster "$initial_cluster" \
    --initial-cluster-token "$token" --initial-advertise-peer-urls "$peer_urls" --data-dir "$work/data" >"$work/restore.log" 2>&1 ||
    die "snapshot restore failed: $(tail -c 400 "$work/restore.log" | tr '\n' ' ')"
else
  ETCDCTL_API=3 "$etcdctl" snapshot restore "$work/snapshot.db" --name "$name" --initial-cluster "$initial_cluster" \
    --initial-cluster-token "$token" --initial-advertise-peer-urls "$peer_urls" --data-dir "$work/data" >"$work/restore.log" 2>&1 ||
    die "snapshot restore failed: $(tail -c 400 "$work/restore.log" | tr '\n' ' ')"
fi
[ -d "$work/data/member" ] || die "snapshot restore left no member folder in $work/data"

mkdir -p "$data_dir"
[ -e "$data_dir/member" ] && die "$data_dir/member appeared during the restore; leaving it as it is"
mv "$work/data/member" "$data_dir/member"
chown -R "$user:$user" "$data_dir"
chmod 0700 "$data_dir"
say "restored member $name into $data_dir from the snapshot (sha256 $sha256), token $token"
