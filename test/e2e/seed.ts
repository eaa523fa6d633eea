import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';

// What a NoCloud "cloud" hands one guest: the product's user-data unchanged, plus identity and an address.
export interface SeedSpec {
  instanceId: string;
  hostname: string;
  userData: string;
  macAddress: string;
  // e.g. 10.77.0.11/24; the network-config stands in for the cloud's network, it is not product output
  addressCidr: string;
  // More addresses on the same interface, e.g. a link-local one to reach a metadata service on-link.
  extraAddressCidrs?: readonly string[];
  // The cloud's own cloud-config (NoCloud vendor-data), e.g. the DNS records the user would create; default TEST_CLOUD_VENDOR_DATA.
  vendorData?: string;
  // The account's SSH keys the cloud hands the instance (NoCloud meta-data public-keys).
  publicKeys?: readonly string[];
}

export function renderMetaData(seed: SeedSpec): string {
  const keys = (seed.publicKeys ?? []).map((key) => `  - ${JSON.stringify(key)}\n`).join('');
  return `instance-id: ${seed.instanceId}\nlocal-hostname: ${seed.hostname}\n${keys ? `public-keys:\n${keys}` : ''}`;
}

export function renderNetworkConfig(seed: SeedSpec): string {
  return [
    'version: 2',
    'ethernets:',
    '  eth0:',
    '    match:',
    `      macaddress: "${seed.macAddress}"`,
    '    set-name: eth0',
    `    addresses: [${[seed.addressCidr, ...(seed.extraAddressCidrs ?? [])].join(', ')}]`,
    '',
  ].join('\n');
}

/**
 * The test cloud's own cloud-config when a suite gives none: only an ed25519 SSH host key. cloud-init
 * otherwise makes RSA, DSA and ECDSA keys too, which under TCG costs seconds of every boot; host
 * keys have nothing to do with the product, and user-data still overrides vendor-data.
 */
export const TEST_CLOUD_VENDOR_DATA = '#cloud-config\nssh_genkeytypes: [ed25519]\n';

// A cidata-labelled ISO: cloud-init's NoCloud datasource finds it by its volume label.
export async function writeSeedIso(seed: SeedSpec, dir: string): Promise<string> {
  const contents = join(dir, `${seed.hostname}-seed`);
  await mkdir(contents, { recursive: true });
  await writeFile(join(contents, 'user-data'), seed.userData);
  await writeFile(join(contents, 'meta-data'), renderMetaData(seed));
  await writeFile(join(contents, 'network-config'), renderNetworkConfig(seed));
  await writeFile(join(contents, 'vendor-data'), seed.vendorData ?? TEST_CLOUD_VENDOR_DATA);
  const iso = join(dir, `${seed.hostname}-seed.iso`);
  await run(['genisoimage', '-quiet', '-output', iso, '-volid', 'cidata', '-joliet', '-rock', contents]);
  return iso;
}
