import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, tempDirsRemovedAfterAll } from '../support/cli.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './fake-api.js';

const workDir = tempDirsRemovedAfterAll('do-out');
let fake: FakeDigitalOcean;

beforeEach(async () => {
  fake = await startFakeDigitalOcean({ domains: ['example.com'] });
});
afterEach(async () => {
  await fake.close();
});

const env = () => ({ DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url });
const CREATE = ['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--key-size', '2048', '--poll-interval', '0.05', '--wait-timeout', '20'];
/** Every record of the cluster: the members' A records and the stable client name's A and SRV records. */
const records = () => (fake.domains.get('example.com') ?? []).filter((record) => record.type === 'A' || record.type === 'SRV');
const aRecords = () => records().filter((record) => record.type === 'A' && record.name !== 'etcd');

/** The real CLI, as a user runs it, in `cwd`. */
describe('destroy-droplets finds the folder create-droplets wrote, wherever --out points', () => {
  it.each([
    ['an absolute --out, run from another folder', (base: string) => ({ out: join(base, 'clusters'), createCwd: base, destroyCwd: join(base, 'elsewhere') })],
    ['a relative --out, run from the same folder', (base: string) => ({ out: 'clusters', createCwd: base, destroyCwd: base })],
  ])('%s', async (_case, layout) => {
    const { out, createCwd, destroyCwd } = layout(workDir());
    mkdirSync(destroyCwd, { recursive: true });
    const created = await runCli([...CREATE, '--out', out], createCwd, env());
    expect(created.code, created.stderr).toBe(0);
    expect(existsSync(resolve(createCwd, out, 'etcd', 'digitalocean.json'))).toBe(true);
    expect(aRecords()).toHaveLength(3);
    expect(records()).toHaveLength(9);

    // No --domain: the zone comes from digitalocean.json in <out>/etcd.
    const destroyed = await runCli(['destroy-droplets', '--out', out, '--yes'], destroyCwd, env());
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(destroyed.stderr).not.toContain('DNS records are not looked for');
    expect(records()).toEqual([]);
    expect(fake.droplets.size).toBe(0);
    expect(fake.violations).toEqual([]);
    expect(destroyed.stdout).toMatch(/The local files in \S*clusters\/etcd are kept/);
  });
});
