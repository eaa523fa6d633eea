# A DigitalOcean snapshot with etcd preinstalled, for `etcd-cloudinit gen-userdata --install baked`.
#   packer init packer/ && packer build packer/         # Packer >= 1.7 (plugins.pkr.hcl)
#   packer build packer/etcd.pkr.hcl                    # Debian's packer 1.6.6 (builder bundled)
# The image gets the same install as download-mode user-data (cloud-init/install-etcd.sh), the etcd
# user, /etc/etcd/pki, the unit every member runs, and nftables; never a member's config,
# certificates or key.
# See docs/packer.md.

variable "do_token" {
  type        = string
  description = "DigitalOcean API token (read/write). Defaults to $DIGITALOCEAN_TOKEN, then $DIGITALOCEAN_ACCESS_TOKEN (doctl's name)."
  default     = env("DIGITALOCEAN_TOKEN")
  sensitive   = true
}

# Only the fallback of do_token: env() may appear in a default alone, so the choice is a local.
variable "do_access_token" {
  type        = string
  description = "Used when do_token is empty. Defaults to $DIGITALOCEAN_ACCESS_TOKEN."
  default     = env("DIGITALOCEAN_ACCESS_TOKEN")
  sensitive   = true
}

variable "region" {
  type        = string
  description = "Region of the build droplet, and of the snapshot."
  default     = "fra1"
}

variable "snapshot_regions" {
  type        = list(string)
  description = "Further regions to copy the snapshot to."
  default     = []
}

variable "size" {
  type        = string
  description = "Size slug of the temporary build droplet."
  default     = "s-1vcpu-1gb"
}

variable "base_image" {
  type        = string
  description = "Image slug the snapshot starts from: an Ubuntu LTS with cloud-init."
  default     = "ubuntu-24-04-x64"
}

variable "etcd_version" {
  type        = string
  description = "etcd release to bake; pass the same --etcd-version to gen-userdata --install baked."
  # Equal to DEFAULT_ETCD_VERSION in src/versions.ts (test/packer/packer-template.test.ts checks it).
  default = "v3.6.16"
  validation {
    # The schema's pattern; regex_replace because packer 1.6.6 has no regex() here.
    condition     = regex_replace(var.etcd_version, "^v3\\.[4-7]\\.(0|[1-9][0-9]{0,2})$", "") == ""
    error_message = "The etcd_version must be a supported etcd release, v3.4.x to v3.7.x (for example v3.6.16)."
  }
}

variable "release_url" {
  type        = string
  description = "Base URL of etcd releases (<url>/<version>/etcd-<version>-linux-amd64.tar.gz and SHA256SUMS); a mirror for air-gapped sites."
  default     = "https://github.com/etcd-io/etcd/releases/download"
  validation {
    condition     = regex_replace(var.release_url, "^https?://[^\\s'\"\\\\`$]+$", "") == ""
    error_message = "The release_url must be an http(s) URL without spaces, quotes or '$'."
  }
}

variable "etcd_sha256" {
  type        = string
  description = "Pin the tarball's SHA-256 instead of trusting the release's SHA256SUMS (empty: trust SHA256SUMS)."
  default     = ""
  validation {
    condition     = var.etcd_sha256 == "" || regex_replace(var.etcd_sha256, "^[0-9a-f]{64}$", "") == ""
    error_message = "The etcd_sha256 must be empty or 64 lowercase hex digits."
  }
}

variable "snapshot_prefix" {
  type        = string
  description = "Snapshot name prefix; the name is <prefix>-<etcd_version>-<UTC timestamp>."
  default     = "etcd-cloudinit"
}

locals {
  # 2026-11-22T01:50:00Z -> 20261122015000
  timestamp     = regex_replace(timestamp(), "[- TZ:]", "")
  snapshot_name = "${var.snapshot_prefix}-${var.etcd_version}-${local.timestamp}"
  # Where the build uploads its inputs; removed again before the snapshot is taken.
  upload_dir = "/tmp/etcd-cloudinit-bake"
  sha256_arg = var.etcd_sha256 == "" ? "" : "--sha256 ${var.etcd_sha256}"
  api_token  = var.do_token != "" ? var.do_token : var.do_access_token
}

source "digitalocean" "etcd" {
  api_token        = local.api_token
  image            = var.base_image
  region           = var.region
  size             = var.size
  ssh_username     = "root"
  droplet_name     = "packer-${local.snapshot_name}"
  snapshot_name    = local.snapshot_name
  snapshot_regions = var.snapshot_regions
  tags             = ["etcd-cloudinit-bake"]
}

build {
  sources = ["source.digitalocean.etcd"]

  # The base image's own first boot must finish before we change users, units or cloud-init state.
  provisioner "shell" {
    inline = [
      # Exit 2 is "done, with recoverable warnings" (cloud-init >= 23.4): the base image's business, not ours.
      "cloud-init status --wait >/dev/null || test $? -eq 2",
      "mkdir -p ${local.upload_dir}",
    ]
  }

  # One source of truth: the very script download-mode user-data runs, not a copy.
  provisioner "file" {
    source      = "${path.root}/../cloud-init/install-etcd.sh"
    destination = "${local.upload_dir}/install-etcd.sh"
  }

  # Rendered from cloud-init/etcd.service.ejs; identical on every member (a test keeps it current).
  provisioner "file" {
    source      = "${path.root}/files/etcd.service"
    destination = "${local.upload_dir}/etcd.service"
  }

  provisioner "file" {
    source      = "${path.root}/bake-etcd.sh"
    destination = "${local.upload_dir}/bake-etcd.sh"
  }

  # DNS-member nodes lock the metadata service down with nft (cloud-init/metadata-lockdown.sh); a
  # clone of an image without it would have to install it at its first boot.
  provisioner "shell" {
    inline = [
      "command -v nft >/dev/null || { apt-get -q -o DPkg::Lock::Timeout=300 update && DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends nftables; }",
    ]
  }

  provisioner "shell" {
    inline = [
      "sh ${local.upload_dir}/bake-etcd.sh --version ${var.etcd_version} --release-url ${var.release_url} ${local.sha256_arg} --install-script ${local.upload_dir}/install-etcd.sh --unit ${local.upload_dir}/etcd.service",
    ]
  }

  # Seal: every droplet made from the snapshot must boot as a new instance.
  provisioner "shell" {
    inline = [
      "rm -rf ${local.upload_dir}",
      # Forget this boot: cloud-init runs again in full (users, write_files, runcmd) on each clone.
      "cloud-init clean --logs",
      # An empty machine-id is regenerated at boot; a shared one breaks DHCP client IDs and journald.
      "truncate -s 0 /etc/machine-id",
      "rm -f /var/lib/dbus/machine-id",
      # Packer's temporary key; clones get the keys chosen at droplet creation.
      "rm -f /root/.ssh/authorized_keys",
    ]
  }

  # The snapshot's id for scripts: artifact_id is "<region>:<snapshot id>" (docs/packer.md).
  post-processor "manifest" {
    output     = "${path.root}/build/manifest.json"
    strip_path = true
  }
}
