#!/bin/sh
# Promotes this member from learner to voting member once it has caught up with the leader; run
# by etcd-promote.service on a member that add-member joined as a learner. Safe to run again: a
# member that already votes exits at once, without asking the cluster.
#   etcd-promote.sh --etcdctl BIN --local-url URL --endpoints URL,URL --cacert FILE --cert FILE --key FILE
#                   --member NAME --member-id HEX --attempts N --interval SECONDS
set -eu

say() {
  echo "etcd-cloudinit: etcd-promote: $*"
}

die() {
  echo "etcd-cloudinit: etcd-promote: $*" >&2
  exit 1
}

etcdctl='' local_url='' endpoints='' cacert='' cert='' key='' member='' member_id='' attempts='' interval=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --etcdctl) etcdctl=$2 ;;
    --local-url) local_url=$2 ;;
    --endpoints) endpoints=$2 ;;
    --cacert) cacert=$2 ;;
    --cert) cert=$2 ;;
    --key) key=$2 ;;
    --member) member=$2 ;;
    --member-id) member_id=$2 ;;
    --attempts) attempts=$2 ;;
    --interval) interval=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in etcdctl local_url endpoints cacert cert key member member_id attempts interval; do
  eval "value=\$$required"
  [ -n "$value" ] || die "--$(echo "$required" | tr _ -) is required"
done
case $member_id in *[!0-9a-f]*) die "--member-id must be the hex member ID, got $member_id" ;; esac
case $attempts in '' | *[!0-9]* | 0) die "--attempts must be a positive whole number, got $attempts" ;; esac
case $interval in '' | *[!0-9]*) die "--interval must be a whole number of seconds, got $interval" ;; esac

ctl() {
  ETCDCTL_API=3 "$etcdctl" --cacert="$cacert" --cert="$cert" --key="$key" --command-timeout=30s "$@"
}

attempt=0
while :; do
  attempt=$((attempt + 1))
  # A learner answers status (and little else); a voting member's status lacks isLearner.
  if status=$(ctl --endpoints="$local_url" endpoint status -w json 2>&1); then
    case $status in
      *'"isLearner":true'*) ;;
      *)
        say "member $member ($member_id) is a voting member"
        exit 0
        ;;
    esac
    # Only voting members take the promotion; a learner refuses every such request.
    if output=$(ctl --endpoints="$endpoints" member promote "$member_id" 2>&1); then
      say "promoted member $member ($member_id) from learner to voting member"
      exit 0
    fi
    case $output in
      *'which is in sync with leader'*) reason='still catching up with the leader' ;;
      *'can only promote a learner member'*)
        say "member $member ($member_id) is a voting member"
        exit 0
        ;;
      *'member not found'*) die "member $member_id is not in the cluster (removed?); not promoting" ;;
      *) reason=$(printf '%s\n' "$output" | tail -n 1) ;;
    esac
  else
    reason="the local member does not answer yet: $(printf '%s\n' "$status" | tail -n 1)"
  fi
  [ "$attempt" -lt "$attempts" ] || die "gave up after $attempts attempts ($reason); promote it by hand: etcdctl member promote $member_id"
  say "attempt $attempt of $attempts: $reason; next try in ${interval}s"
  sleep "$interval"
done
