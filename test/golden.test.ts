import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { withJoiningMember } from '../src/day2/membership.js';
import { resolveClusterInput } from '../src/input.js';
import { mintPki } from '../src/pki/mint.js';
import { planCluster } from '../src/plan.js';
import { renderUserData } from '../src/render.js';
import { tempDir } from './support/cli.js';
import { counterSerials, expectGolden, FIXED_NOW, FIXTURES, fixtureKeySource } from './support/golden.js';

/** Each case: the argv of gen-userdata; want/ holds the user-data it must render, byte for byte. */
const CASES: { name: string; args: string[]; members: string[] }[] = [
  { name: 'three-members-default', args: ['--ips', '10.10.0.11,10.10.0.12,10.10.0.13'], members: ['etcd1', 'etcd2', 'etcd3'] },
  {
    name: 'v3.4.23-mirror-pinned',
    args: [
      '--ips', '192.168.50.11',
      '--names', 'etcd1',
      '--cluster-name', 'lab',
      '--etcd-version', 'v3.4.23',
      '--release-url', 'http://mirror.internal:8080/etcd/',
      '--etcd-sha256', 'a'.repeat(64),
    ],
    members: ['etcd1'],
  },
  // DNS-member mode (what create-droplets sends): names in certificates and URLs, listen address from metadata.
  { name: 'dns-members-domain', args: ['--domain', 'example.com'], members: ['etcd1', 'etcd2', 'etcd3'] },
  // DNS-member mode on another cloud: the address in a range at each start; no metrics listener.
  {
    name: 'dns-member-listen-cidr-no-metrics',
    args: ['--hostnames', 'etcd1.db.example.net', '--names', 'etcd1', '--listen-cidr', '10.0.0.0/8', '--no-metrics'],
    members: ['etcd1'],
  },
  {
    // A node booted from the packer/ snapshot: no download, only the version check.
    name: 'baked-image',
    args: ['--ips', '10.10.0.11,10.10.0.12,10.10.0.13', '--install', 'baked'],
    members: ['etcd1'],
  },
  {
    name: 'v3.7-from-config',
    args: ['--config', join(FIXTURES, 'v3.7-from-config', 'cluster.yaml')],
    members: ['alpha', 'beta', 'etcd3'],
  },
];

describe('golden user-data (fixed keys, serials and clock)', () => {
  const workDirs: string[] = [];
  afterAll(() => workDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  it.each(CASES)('$name', async ({ name, args, members }) => {
    const workDir = tempDir('golden');
    workDirs.push(workDir);
    const stderr: string[] = [];
    const code = await main(
      ['gen-userdata', '--key-size', '2048', ...args],
      { env: {}, stdout: { write: () => true }, stderr: { write: (text: string) => stderr.push(text) }, cwd: workDir, now: () => FIXED_NOW },
      { keySource: fixtureKeySource, serialSource: counterSerials() },
    );
    expect(code, stderr.join('')).toBe(0);
    const clusterDir = join(workDir, 'out', args.includes('lab') ? 'lab' : 'etcd');
    for (const member of members) {
      expectGolden(readFileSync(join(clusterDir, 'user-data', `${member}.yaml`), 'utf8'), join(FIXTURES, name, 'want', `${member}.yaml`));
    }
  });
});

describe('golden user-data of a member add-member joins as a learner', () => {
  // What add-member renders after member add (its plan, with the ID etcd gave the learner): here
  // etcd3 joins etcd1 and etcd2, so the fixture keys serve.
  it('learner-joining', async () => {
    const { input } = resolveClusterInput({ ips: ['10.10.0.11', '10.10.0.12', '10.10.0.13'], 'key-size': 2048 }, {});
    const plan = withJoiningMember(planCluster(input, '/nonexistent'), 'etcd3', '9266c48bb6c02e2a');
    const pki = await mintPki(plan, { now: FIXED_NOW, keySource: fixtureKeySource, serialSource: counterSerials() });
    expectGolden(renderUserData(plan, pki, 'etcd3'), join(FIXTURES, 'learner-joining', 'want', 'etcd3.yaml'));
  });
});
