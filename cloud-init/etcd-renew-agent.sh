#!/bin/sh
# Renews this member's certificate in place when renew-certs asks (etcd-renew-agent.timer runs it
# every 20 s; each run is one bounded pass). The channel is etcd itself, under the reserved prefix
# /etcd-cloudinit/renew/<member>/:
#   agent        written here once: "this member has an agent" (renew-certs checks it)
#   request      renew-certs: nonce=, cn=, san=, key= (the cluster's key type)
#   response     here: nonce=, signature= (base64, over "nonce\n" + CSR, by the CURRENT key), then the CSR
#   certificate  renew-certs: nonce=, then the certificate it signed for the CSR's (new) key
# The new private key is made here and never leaves the machine; the pair is installed with one
# rename per file (etcd reads both files on every new TLS handshake: no restart).
#   etcd-renew-agent.sh --etcdctl BIN --endpoints URL,URL --cacert FILE --cert FILE --key FILE
#                       --member NAME --state-dir DIR
set -eu

say() {
  echo "etcd-cloudinit: etcd-renew-agent: $*"
}

die() {
  echo "etcd-cloudinit: etcd-renew-agent: $*" >&2
  exit 1
}

etcdctl='' endpoints='' cacert='' cert='' key='' member='' state_dir=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --etcdctl) etcdctl=$2 ;;
    --endpoints) endpoints=$2 ;;
    --cacert) cacert=$2 ;;
    --cert) cert=$2 ;;
    --key) key=$2 ;;
    --member) member=$2 ;;
    --state-dir) state_dir=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in etcdctl endpoints cacert cert key member state_dir; do
  eval "value=\$$required"
  [ -n "$value" ] || die "--$(echo "$required" | tr _ -) is required"
done
case $member in *[!A-Za-z0-9.-]*) die "--member must be a member name, got $member" ;; esac

prefix="/etcd-cloudinit/renew/$member"

ctl() {
  ETCDCTL_API=3 "$etcdctl" --endpoints="$endpoints" --cacert="$cacert" --cert="$cert" --key="$key" --dial-timeout=5s --command-timeout=20s "$@"
}

# field NAME FILE: the value of the first "NAME=..." line.
field() {
  sed -n "s/^$1=//p" "$2" | head -n 1
}

umask 077
mkdir -p "$state_dir"
work=$(mktemp -d "$state_dir/run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Say once that this member has an agent; renew-certs asks members without one to roll instead.
if [ -z "$(ctl get "$prefix/agent" --print-value-only)" ]; then
  printf 'version=1\n' | ctl put "$prefix/agent" >/dev/null
  say "registered the renewal agent of $member under $prefix/"
fi

ctl get "$prefix/request" --print-value-only > "$work/request"
[ -s "$work/request" ] || exit 0

nonce=$(field nonce "$work/request")
cn=$(field cn "$work/request")
san=$(field san "$work/request")
keyspec=$(field key "$work/request")
case $nonce in '' | *[!0-9a-f]*) die "the request's nonce is not hex: $nonce" ;; esac
case $cn in '' | *[!A-Za-z0-9.-]*) die "the request's cn is not a name: $cn" ;; esac
case $san in '' | *[!A-Za-z0-9.:,-]*) die "the request's san is not a list of IP:/DNS: names: $san" ;; esac
case $keyspec in
  rsa:2048 | rsa:3072 | rsa:4096) genpkey="-algorithm RSA -pkeyopt rsa_keygen_bits:${keyspec#rsa:}" ;;
  ec:P-256 | ec:P-384) genpkey="-algorithm EC -pkeyopt ec_paramgen_curve:${keyspec#ec:} -pkeyopt ec_param_enc:named_curve" ;;
  *) die "the request's key type is not one etcd-cloudinit mints: $keyspec" ;;
esac

# A new request (another nonce): a new key and CSR; the one of an earlier request is dropped.
if [ "$(cat "$state_dir/pending.nonce" 2>/dev/null || true)" != "$nonce" ]; then
  rm -f "$state_dir/pending.key" "$state_dir/pending.nonce" "$state_dir/pending.response"
  # shellcheck disable=SC2086 # genpkey holds several words on purpose
  openssl genpkey $genpkey -out "$work/new.key" 2>/dev/null || die "openssl could not make a $keyspec key"
  openssl req -new -key "$work/new.key" -subj "/CN=$cn" -addext "subjectAltName=$san" -out "$work/csr" || die "openssl could not make the CSR"
  # Proof that this request comes from the holder of the current key.
  { printf '%s\n' "$nonce"; cat "$work/csr"; } > "$work/signed"
  openssl dgst -sha256 -sign "$key" -out "$work/signature" "$work/signed" || die "could not sign with the current key $key"
  { printf 'nonce=%s\nsignature=%s\n' "$nonce" "$(base64 -w 0 < "$work/signature")"; cat "$work/csr"; } > "$work/response"
  mv "$work/new.key" "$state_dir/pending.key"
  mv "$work/response" "$state_dir/pending.response"
  printf '%s\n' "$nonce" > "$state_dir/pending.nonce"
  made=yes
else
  made=no
fi

ctl get "$prefix/certificate" --print-value-only > "$work/certificate"
if [ ! -s "$work/certificate" ] || [ "$(field nonce "$work/certificate")" != "$nonce" ]; then
  if [ "$made" = yes ] || [ -z "$(ctl get "$prefix/response" --print-value-only)" ]; then
    ctl put "$prefix/response" < "$state_dir/pending.response" >/dev/null
    say "answered renewal request $nonce with a CSR for a new $keyspec key"
  fi
  exit 0
fi

# The signed certificate: it must certify the key made here, and chain to the cluster's CA.
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$work/certificate" > "$work/new.crt"
[ "$(openssl x509 -in "$work/new.crt" -noout -pubkey)" = "$(openssl pkey -in "$state_dir/pending.key" -pubout)" ] \
  || die "the certificate for request $nonce does not certify the key made for it; not installed"
openssl verify -CAfile "$cacert" "$work/new.crt" >/dev/null || die "the certificate for request $nonce does not chain to $cacert; not installed"

# install SOURCE TARGET: SOURCE becomes TARGET with TARGET's owner and mode, in one rename.
install_file() {
  cp "$1" "$2.renew.$$"
  chown --reference="$2" "$2.renew.$$"
  chmod --reference="$2" "$2.renew.$$"
  mv -f "$2.renew.$$" "$2"
}
# Key first, then certificate: a handshake between the two renames (microseconds) reads a pair that
# does not match and fails; its client dials again and gets the new pair.
install_file "$state_dir/pending.key" "$key"
install_file "$work/new.crt" "$cert"
serial=$(openssl x509 -in "$cert" -noout -serial | sed 's/^serial=//')
say "installed the renewed certificate of $member (serial $serial) and its new key"

# The request is done: no key of this member stays in etcd or in the state directory.
ctl del "$prefix/request" >/dev/null
ctl del "$prefix/response" >/dev/null
ctl del "$prefix/certificate" >/dev/null
rm -f "$state_dir/pending.key" "$state_dir/pending.nonce" "$state_dir/pending.response"
