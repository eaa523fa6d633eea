#!/bin/sh
# DNS-member mode: etcd must listen on an IP address, and the cloud assigns the machine's private
# IPv4 only at creation. etcd.service runs this as root before each start: it finds the address and
# writes etcd's config from the template with the address filled in. SOURCE says where to look:
#   http://...            a metadata URL that answers the address (DigitalOcean's)
#   cidr:10.0.0.0/8       the one IPv4 address this host has inside the range (ip -4 addr)
#   instance-data:KEY     cloud-init's instance data (cloud-init query KEY)
# A failure exits non-zero with one line saying why; the unit's Restart=on-failure tries again.
#   listen-address.sh TEMPLATE CONFIG SOURCE PLACEHOLDER
set -eu

[ $# -eq 4 ] || { echo "usage: listen-address.sh TEMPLATE CONFIG SOURCE PLACEHOLDER" >&2; exit 2; }
template=$1 config=$2 source=$3 placeholder=$4

# The addresses of this host inside CIDR, one a line (ip -4 -o: "2: eth1    inet 10.0.0.5/24 brd ...").
addresses_in() {
  ip -4 -o addr show | awk -v cidr="$1" '
    function number(a,   p) { split(a, p, "."); return ((p[1] * 256 + p[2]) * 256 + p[3]) * 256 + p[4] }
    BEGIN { split(cidr, c, "/"); size = 2 ^ (32 - c[2]); base = number(c[1]) - number(c[1]) % size }
    { for (i = 1; i < NF; i++) if ($i == "inet") { split($(i + 1), a, "/"); n = number(a[1]); if (n >= base && n < base + size) print a[1] } }' | sort -u
}

# One try: the address on stdout, or "!" and why not.
lookup() {
  case $source in
    http://* | https://*)
      curl -fsS --max-time 3 "$source" 2>/dev/null || echo "!no private IPv4 from $source"
      ;;
    cidr:*)
      command -v ip >/dev/null 2>&1 || { echo "!ip (iproute2) is not installed: cannot list this host's addresses"; return; }
      found=$(addresses_in "${source#cidr:}")
      count=$(printf '%s' "$found" | grep -c . || true)
      if [ "$count" -eq 1 ]; then
        printf '%s' "$found"
      elif [ "$count" -eq 0 ]; then
        echo "!no IPv4 address of this host is inside ${source#cidr:} (ip -4 addr show)"
      else
        echo "!$count IPv4 addresses of this host are inside ${source#cidr:} ($(echo $found)); give a narrower --listen-cidr"
      fi
      ;;
    instance-data:*)
      command -v cloud-init >/dev/null 2>&1 || { echo "!cloud-init is not installed: no instance data to read"; return; }
      # Only the metadata is wanted: the user-data (with the member key) is not read. ETCD_CLOUDINIT_INSTANCE_DATA: another file (tests).
      cloud-init query ${ETCD_CLOUDINIT_INSTANCE_DATA:+--instance-data "$ETCD_CLOUDINIT_INSTANCE_DATA"} --user-data /dev/null --vendor-data /dev/null "${source#instance-data:}" 2>/dev/null ||
        echo "!no private IPv4 in cloud-init's instance data (cloud-init query ${source#instance-data:})"
      ;;
  esac
}

case $source in
  http://* | https://* | cidr:*/* | instance-data:?*) ;;
  *) echo "etcd-cloudinit: listen-address: SOURCE $source is not http(s)://..., cidr:RANGE or instance-data:KEY" >&2; exit 2 ;;
esac

tries=${ETCD_CLOUDINIT_METADATA_TRIES:-10}
address=''
why=''
attempt=0
while [ $attempt -lt "$tries" ]; do
  attempt=$((attempt + 1))
  answer=$(lookup)
  # A dotted quad of digits and nothing else; anything else (an HTML error page) is not an address.
  if printf '%s' "$answer" | grep -Eqx '([0-9]{1,3}\.){3}[0-9]{1,3}'; then
    address=$answer
    break
  fi
  case $answer in
    '!'*) why=${answer#!} ;;
    *) why="no private IPv4 from $source" ;;
  esac
  [ $attempt -lt "$tries" ] && sleep 2
done
[ -n "$address" ] || { echo "etcd-cloudinit: listen-address: $why after $attempt tries" >&2; exit 1; }

tmp=$(mktemp "$config.XXXXXX")
sed "s/$placeholder/$address/g" "$template" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$config"
echo "etcd-cloudinit: listen-address: etcd listens on $address"
