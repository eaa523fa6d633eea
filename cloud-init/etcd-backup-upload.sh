#!/bin/sh
# Uploads the newest local snapshot, checked and with its SHA-256, to an S3-compatible bucket
# (DigitalOcean Spaces or any other), if this member is the leader now, and keeps the newest N
# snapshots of the cluster there. Run by etcd-backup-upload.service, which each successful
# snapshot starts (OnSuccess= of etcd-snapshot.service). It never
# deletes a local snapshot; a failed upload fails the service run (the journal and
# `systemctl --failed` show it) and the next run uploads the newest snapshot again.
#   etcd-backup-upload.sh --etcdctl BIN --etcdutl BIN|none --endpoint URL --cacert FILE --cert FILE
#       --key FILE --dir DIR --member NAME --bucket-url URL --prefix PREFIX --region REGION
#       --credentials FILE --retain N
# --bucket-url is path-style (https://nyc3.digitaloceanspaces.com/my-bucket); objects are
# <prefix><UTC time>-<member>-rev<revision>.db. The credentials file has two lines,
# access_key_id=... and secret_access_key=...; the secret reaches curl on its standard input,
# never on a command line (which `ps` shows).
# Its unit passes --credentials %d/backup: systemd's copy of the root-only key file
# (LoadCredential=), readable by this run alone.
set -eu

say() {
  echo "etcd-cloudinit: etcd-backup: $*"
}

die() {
  echo "etcd-cloudinit: etcd-backup: FAILED: $*" >&2
  exit 1
}

etcdctl='' etcdutl='' endpoint='' cacert='' cert='' key='' dir='' member='' bucket_url='' prefix='' region='' credentials='' retain=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --etcdctl) etcdctl=$2 ;;
    --etcdutl) etcdutl=$2 ;;
    --endpoint) endpoint=$2 ;;
    --cacert) cacert=$2 ;;
    --cert) cert=$2 ;;
    --key) key=$2 ;;
    --dir) dir=$2 ;;
    --member) member=$2 ;;
    --bucket-url) bucket_url=$2 ;;
    --prefix) prefix=$2 ;;
    --region) region=$2 ;;
    --credentials) credentials=$2 ;;
    --retain) retain=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in etcdctl etcdutl endpoint cacert cert key dir member bucket_url region credentials retain; do
  eval "value=\$$required"
  [ -n "$value" ] || die "--$(echo "$required" | tr _ -) is required"
done
case $retain in '' | *[!0-9]* | 0) die "--retain must be a positive whole number, got $retain" ;; esac

ctl() {
  ETCDCTL_API=3 "$etcdctl" --endpoints="$endpoint" --cacert="$cacert" --cert="$cert" --key="$key" --command-timeout=30s "$@"
}

# One snapshot per interval in the bucket, not one per member: only the leader uploads.
status=$(ctl endpoint status -w json) || die "cannot ask the local member for its status"
member_id=$(printf '%s' "$status" | sed -n 's/.*"member_id":\([0-9]*\).*/\1/p')
leader=$(printf '%s' "$status" | sed -n 's/.*"leader":\([0-9]*\).*/\1/p')
if [ -z "$member_id" ] || [ "$member_id" != "$leader" ]; then
  say "member $member is not the leader now; the leader uploads"
  exit 0
fi

newest=$(ls -1 "$dir" | grep "^etcd-$member-.*\.db\$" | sort | tail -n 1 || true)
[ -n "$newest" ] || die "no snapshot of $member in $dir to upload"
marker="$dir/.uploaded"
if [ -f "$marker" ] && grep -qxF "$newest" "$marker"; then
  say "$newest is already in the bucket"
  exit 0
fi

# A snapshot that does not read back is not worth keeping off-site.
if [ "$etcdutl" != none ]; then
  check=$("$etcdutl" snapshot status "$dir/$newest" -w json 2>&1) || die "$newest does not read back as a snapshot: $check"
else
  check=$(ETCDCTL_API=3 "$etcdctl" snapshot status "$dir/$newest" -w json 2>&1) || die "$newest does not read back as a snapshot: $check"
fi
revision=$(printf '%s' "$check" | sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
[ -n "$revision" ] || die "no revision in the status of $newest: $check"
sha256=$(sha256sum "$dir/$newest" | cut -d' ' -f1)
stamp=$(printf '%s' "$newest" | sed -n "s/^etcd-$member-\(.*\)\.db\$/\1/p")
object="$prefix$stamp-$member-rev$revision.db"

access_key=$(sed -n 's/^access_key_id=//p' "$credentials")
secret_key=$(sed -n 's/^secret_access_key=//p' "$credentials")
[ -n "$access_key" ] && [ -n "$secret_key" ] || die "$credentials lacks access_key_id= or secret_access_key="

# S3 wants the payload's SHA-256 in every signed request; this one is of an empty body.
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
body=$(mktemp)
trap 'rm -f "$body"' EXIT

# s3: a request signed with AWS signature v4; the key pair goes in on stdin as curl's config.
s3() {
  printf 'user = "%s:%s"\n' "$access_key" "$secret_key" | curl -q -sS --config - --aws-sigv4 "aws:amz:$region:s3" \
    --connect-timeout 20 --max-time 600 --retry 2 -o "$body" -w '%{http_code}' "$@"
}

code=$(s3 -T "$dir/$newest" -H "x-amz-content-sha256: $sha256" -H "x-amz-meta-sha256: $sha256" \
  -H "x-amz-meta-member: $member" -H "x-amz-meta-revision: $revision" "$bucket_url/$object") || code="no answer"
if [ "$code" != 200 ]; then
  die "upload of $newest to $bucket_url/$object: HTTP $code $(head -c 300 "$body" | tr -d '\n'); local snapshots kept, the next run tries again"
fi
echo "$newest" >>"$marker"
say "uploaded $newest (revision $revision, sha256 $sha256) to $bucket_url/$object"

# Keep the newest N of this cluster's snapshots in the bucket (names sort in time order).
# The prefix goes in encoded, as AWS signature v4 canonicalises the query.
code=$(s3 -H "x-amz-content-sha256: $empty_sha256" "$bucket_url?list-type=2&prefix=$(printf "%s" "$prefix" | sed "s|/|%2F|g")") || code="no answer"
[ "$code" = 200 ] || die "listing $bucket_url (prefix $prefix) to prune it: HTTP $code $(head -c 300 "$body" | tr -d '\n')"
# Only what this uploader names, directly under the prefix: other objects, and deeper prefixes, are not ours.
# One page (up to 1000 keys, oldest first) is enough: pruning its oldest never touches the newest N.
pattern=$(printf '%s' "$prefix" | sed 's/[.[\*^$]/\\&/g')
objects=$(grep -o '<Key>[^<]*</Key>' "$body" | sed 's/<\/*Key>//g' | grep "^$pattern[0-9]\{8\}T[0-9]\{6\}Z-[a-z0-9-]*-rev[0-9]*\.db\$" | sort || true)
count=$(printf '%s\n' "$objects" | grep -c . || true)
if [ "$count" -gt "$retain" ]; then
  printf '%s\n' "$objects" | head -n "$((count - retain))" | while read -r old; do
    code=$(s3 -X DELETE -H "x-amz-content-sha256: $empty_sha256" "$bucket_url/$old") || code="no answer"
    case $code in 200 | 204) say "pruned $old from the bucket" ;; *) die "deleting $old from the bucket: HTTP $code" ;; esac
  done
fi
