#!/bin/sh
# DNS-member mode: the metadata service (DigitalOcean's, and most clouds', at 169.254.169.254) serves the user-data, and with it
# the member's private key, to any process that asks. etcd-metadata-lockdown.service runs this at
# every boot, before etcd: from then on only root (uid 0) may reach the service; root still needs it
# (listen-address.sh runs as root). nftables where installed, else iptables; with neither, it installs
# nftables with the distribution's package manager (bounded in time), and fails loudly when it cannot.
#   metadata-lockdown.sh ADDRESS
set -eu

[ $# -eq 1 ] || { echo "usage: metadata-lockdown.sh ADDRESS" >&2; exit 2; }
address=$1
case $address in *[!0-9.]* | '') echo "etcd-cloudinit: metadata-lockdown: not an IPv4 address: $address" >&2; exit 2 ;; esac

# Seconds the whole install may take (index update and install together). The unit never sets the
# variable; tests shorten the bound with it.
install_timeout=${ETCD_CLOUDINIT_INSTALL_TIMEOUT_SECONDS:-300}
case $install_timeout in *[!0-9]* | '') echo "etcd-cloudinit: metadata-lockdown: ETCD_CLOUDINIT_INSTALL_TIMEOUT_SECONDS is not a number of seconds: $install_timeout" >&2; exit 2 ;; esac

have() { command -v "$1" >/dev/null 2>&1; }

# Installs nftables with the first package manager found; its output goes to stderr (the journal).
# timeout signals the manager's whole process group, so a hung download or lock wait ends too.
install_nftables() {
  if have apt-get; then
    manager=apt-get
    set -- sh -c 'apt-get -q -o DPkg::Lock::Timeout=60 update && apt-get -q -y -o DPkg::Lock::Timeout=60 install --no-install-recommends nftables'
  elif have dnf; then
    manager=dnf
    set -- dnf -y -q install nftables
  elif have yum; then
    manager=yum
    set -- yum -y -q install nftables
  else
    echo "etcd-cloudinit: metadata-lockdown: no apt-get, dnf or yum to install nftables with" >&2
    return 1
  fi
  echo "etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed; installing nftables with $manager (at most $install_timeout s)" >&2
  status=0
  DEBIAN_FRONTEND=noninteractive timeout -k 10 "$install_timeout" "$@" >&2 </dev/null || status=$?
  case $status in
    0) ;;
    124 | 137) echo "etcd-cloudinit: metadata-lockdown: installing nftables with $manager did not finish within $install_timeout s; stopped it" >&2; return 1 ;;
    *) echo "etcd-cloudinit: metadata-lockdown: installing nftables with $manager failed (exit $status)" >&2; return 1 ;;
  esac
  have nft || { echo "etcd-cloudinit: metadata-lockdown: $manager finished, and there is still no nft on PATH" >&2; return 1; }
}

if ! have nft && ! have iptables && ! install_nftables; then
  echo "etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed: every local user can read this droplet's user-data (with the member key) from $address" >&2
  echo "etcd-cloudinit: metadata-lockdown: installing nftables failed (see above), so etcd stays stopped; install nftables or iptables on this machine (or in its image), then finish the boot as root with: sh /var/lib/cloud/instance/scripts/runcmd" >&2
  exit 1
fi

if have nft; then
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
else
  iptables -C OUTPUT -d "$address" -m owner ! --uid-owner 0 -j REJECT 2>/dev/null || iptables -A OUTPUT -d "$address" -m owner ! --uid-owner 0 -j REJECT
fi
echo "etcd-cloudinit: metadata-lockdown: only root may reach $address"
