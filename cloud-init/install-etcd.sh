#!/bin/sh
# Installs an etcd release after verifying its SHA-256, or checks that a baked one has the expected version.
# The one install script: cloud-init user-data (download mode) and the Packer image bake both run it.
#   install-etcd.sh install --version v3.6.14 --release-url URL [--sha256 HEX] [--bin-dir /usr/local/bin]
#   install-etcd.sh check   --version v3.6.14 [--bin-dir /usr/local/bin]
set -eu

die() {
  echo "etcd-cloudinit: install-etcd: $*" >&2
  exit 1
}

mode=${1:-}
[ $# -gt 0 ] && shift
version='' release_url='' sha256='' bin_dir=/usr/local/bin
while [ $# -gt 0 ]; do
  case $1 in
    --version) version=$2; shift 2 ;;
    --release-url) release_url=${2%/}; shift 2 ;;
    --sha256) sha256=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[ -n "$version" ] || die "--version is required"

case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac

# The version an etcd binary reports, without the v: binary_version /usr/local/bin/etcd
binary_version() {
  "$1" --version 2>/dev/null | sed -n 's/^etcd Version: *//p'
}

case $mode in
  check)
    found=$(binary_version "$bin_dir/etcd" || true)
    [ "v$found" = "$version" ] || die "expected etcd $version in $bin_dir, found ${found:+v}${found:-nothing}"
    echo "etcd-cloudinit: etcd $version is installed in $bin_dir"
    exit 0
    ;;
  install) ;;
  *) die "usage: install-etcd.sh install|check --version vX.Y.Z [--release-url URL] [--sha256 HEX]" ;;
esac
[ -n "$release_url" ] || die "--release-url is required"

tarball="etcd-$version-linux-$arch.tar.gz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# An https release URL stays https: after a redirect to http, the tarball and SHA256SUMS would come
# over a connection that anyone on the path can rewrite.
case $release_url in
  https://*) redirect_protocols='=https' redirect_words=https ;;
  *) redirect_protocols='=http,https' redirect_words='http or https' ;;
esac

fetch() {
  status=0
  curl --fail --silent --show-error --location --proto-redir "$redirect_protocols" \
    --retry 10 --retry-delay 3 --retry-connrefused --connect-timeout 10 --max-time 600 --output "$2" "$1" || status=$?
  # curl's "unsupported protocol": a redirect that --proto-redir refused.
  [ "$status" -ne 1 ] || die "download failed: $1 redirects to a URL that is not $redirect_words; not installing"
  [ "$status" -eq 0 ] || die "download failed: $1"
}

fetch "$release_url/$version/$tarball" "$work/$tarball"
if [ -n "$sha256" ]; then
  expected=$sha256
else
  fetch "$release_url/$version/SHA256SUMS" "$work/SHA256SUMS"
  expected=$(awk -v f="$tarball" '$2 == f || $2 == "*" f { print $1; exit }' "$work/SHA256SUMS")
  [ -n "$expected" ] || die "no checksum for $tarball in $release_url/$version/SHA256SUMS"
fi
actual=$(sha256sum "$work/$tarball" | cut -d ' ' -f 1)
[ "$actual" = "$expected" ] || die "checksum mismatch for $tarball: expected $expected, got $actual; not installing"

tar -xzf "$work/$tarball" -C "$work"
unpacked="$work/etcd-$version-linux-$arch"
[ -f "$unpacked/etcd" ] || die "$tarball has no etcd binary"
# Checked before anything is installed: a wrong tarball must not replace a working etcd.
found=$(binary_version "$unpacked/etcd" || true)
[ "v$found" = "$version" ] || die "$tarball holds etcd ${found:+v}${found:-that does not run}, expected $version; not installing"
mkdir -p "$bin_dir"
for binary in etcd etcdctl etcdutl; do
  if [ -f "$unpacked/$binary" ]; then
    install -m 0755 "$unpacked/$binary" "$bin_dir/$binary"
  fi
done
echo "etcd-cloudinit: installed etcd $version into $bin_dir (sha256 $actual)"
