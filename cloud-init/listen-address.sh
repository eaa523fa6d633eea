#!/bin/sh
# DNS-member mode: etcd must listen on an IP address, and DigitalOcean assigns a droplet's private
# IPv4 only at creation. etcd.service runs this as root before each start: it reads the address from
# the droplet metadata service and writes etcd's config from the template with the address filled in.
# A failure exits non-zero; the unit's Restart=on-failure tries again.
#   listen-address.sh TEMPLATE CONFIG METADATA_URL PLACEHOLDER
set -eu

[ $# -eq 4 ] || { echo "usage: listen-address.sh TEMPLATE CONFIG METADATA_URL PLACEHOLDER" >&2; exit 2; }
template=$1 config=$2 url=$3 placeholder=$4

tries=${ETCD_CLOUDINIT_METADATA_TRIES:-10}
address=''
attempt=0
while [ $attempt -lt "$tries" ]; do
  attempt=$((attempt + 1))
  answer=$(curl -fsS --max-time 3 "$url" 2>/dev/null || true)
  # A dotted quad of digits and nothing else; anything else (an HTML error page) is not an address.
  if printf '%s' "$answer" | grep -Eqx '([0-9]{1,3}\.){3}[0-9]{1,3}'; then
    address=$answer
    break
  fi
  [ $attempt -lt "$tries" ] && sleep 2
done
[ -n "$address" ] || { echo "etcd-cloudinit: listen-address: no private IPv4 from $url after $attempt tries" >&2; exit 1; }

tmp=$(mktemp "$config.XXXXXX")
sed "s/$placeholder/$address/g" "$template" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$config"
echo "etcd-cloudinit: listen-address: etcd listens on $address"
