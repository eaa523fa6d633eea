#!/bin/sh
# DNS-member mode: the metadata service (DigitalOcean's, and most clouds', at 169.254.169.254) serves the user-data, and with it
# the member's private key, to any process that asks. etcd-metadata-lockdown.service runs this at
# every boot, before etcd: from then on only root (uid 0) may reach the service; root still needs it
# (listen-address.sh runs as root). nftables where installed, else iptables; neither fails loudly.
#   metadata-lockdown.sh ADDRESS
set -eu

[ $# -eq 1 ] || { echo "usage: metadata-lockdown.sh ADDRESS" >&2; exit 2; }
address=$1
case $address in *[!0-9.]* | '') echo "etcd-cloudinit: metadata-lockdown: not an IPv4 address: $address" >&2; exit 2 ;; esac

if command -v nft >/dev/null 2>&1; then
  # Declared, deleted and declared again in one transaction: a re-run replaces the rule, never adds a second.
  nft -f - <<RULES
table inet etcd_cloudinit_metadata
delete table inet etcd_cloudinit_metadata
table inet etcd_cloudinit_metadata {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr $address meta skuid != 0 reject
  }
}
RULES
elif command -v iptables >/dev/null 2>&1; then
  iptables -C OUTPUT -d "$address" -m owner ! --uid-owner 0 -j REJECT 2>/dev/null || iptables -A OUTPUT -d "$address" -m owner ! --uid-owner 0 -j REJECT
else
  echo "etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed: every local user can read this droplet's user-data (with the member key) from $address" >&2
  exit 1
fi
echo "etcd-cloudinit: metadata-lockdown: only root may reach $address"
