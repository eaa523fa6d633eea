#!/bin/sh
# Bakes etcd into an image: everything a node needs that is not the member's identity. Config,
# certificates and key still arrive in user-data (`gen-userdata --install baked`).
# Runs as root on the machine being imaged (Packer) or inside its root filesystem (chroot, e2e test).
#   bake-etcd.sh --version v3.6.14 --release-url URL [--sha256 HEX] --install-script FILE --unit FILE
# --install-script is cloud-init/install-etcd.sh and --unit is packer/files/etcd.service, uploaded.
set -eu

die() {
  echo "etcd-cloudinit: bake-etcd: $*" >&2
  exit 1
}

version='' release_url='' sha256='' install_script_source='' unit_source=''
while [ $# -gt 0 ]; do
  case $1 in
    --version) version=$2; shift 2 ;;
    --release-url) release_url=$2; shift 2 ;;
    --sha256) sha256=$2; shift 2 ;;
    --install-script) install_script_source=$2; shift 2 ;;
    --unit) unit_source=$2; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[ -n "$version" ] || die "--version is required"
[ -n "$release_url" ] || die "--release-url is required"
[ -f "$install_script_source" ] || die "--install-script: no such file: $install_script_source"
[ -f "$unit_source" ] || die "--unit: no such file: $unit_source"

# Where things live on a node: NODE_PATHS in src/plan.ts (test/packer/bake.test.ts keeps them equal).
bin_dir=/usr/local/bin
install_script=/usr/local/lib/etcd-cloudinit/install-etcd.sh
unit_file=/etc/systemd/system/etcd.service
pki_dir=/etc/etcd/pki
data_dir=/var/lib/etcd
user=etcd

# The download-mode install, run once here instead of on every boot: verified by SHA-256 or not at all.
sh "$install_script_source" install --version "$version" --release-url "$release_url" ${sha256:+--sha256 "$sha256"} --bin-dir "$bin_dir"
# The image keeps the script, so `install-etcd.sh check` also works on a node by hand.
install -D -m 0755 "$install_script_source" "$install_script"

if ! getent passwd "$user" >/dev/null; then
  # As cloud-init creates it from the user-data's users: entry (system, no home, no login, locked).
  useradd --system --user-group --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin "$user"
fi
install -d -m 0755 /etc/etcd "$pki_dir"
install -D -m 0644 "$unit_source" "$unit_file"
# No data dir in the image: the unit's StateDirectory= creates it (0700, owned by etcd) at first start,
# and one baked in would make every clone an already-bootstrapped member.
rm -rf "$data_dir"
# etcd.service stays disabled: the user-data enables and starts it once config and certificates exist.

sh "$install_script" check --version "$version" --bin-dir "$bin_dir"
echo "etcd-cloudinit: baked etcd $version, user $user, $unit_file"
