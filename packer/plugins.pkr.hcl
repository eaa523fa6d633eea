# Plugin requirements for Packer >= 1.7, where the DigitalOcean builder is a separate plugin:
#   packer init packer/ && packer build packer/
# Kept out of etcd.pkr.hcl because Debian's packer 1.6.6, which bundles the builder and runs the
# offline `packer validate` in the tests, rejects a `packer { required_plugins }` block.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    digitalocean = {
      source  = "github.com/digitalocean/digitalocean"
      version = ">= 1.4.0"
    }
  }
}
