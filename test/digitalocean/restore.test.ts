/**
 * restore --region on DigitalOcean: droplets created as create-droplets creates them (against the
 * fake API, which checks every request against DigitalOcean's OpenAPI description), their
 * user-data restoring the chosen snapshot; refused while the old cluster's droplets exist.
 * The bucket is s3rver behind a signature-v4 front.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../../src/plan.js';
import { folderSnapshot, runCli, tempDirsRemovedAfterAll } from '../support/cli.js';
import { startCheckedS3, type CheckedS3 } from '../support/s3-sigv4.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './fake-api.js';

const newDir = tempDirsRemovedAfterAll('do-restore');
const BUCKET = 'acme-etcd';
const CREATE = ['--domain', 'example.com', '--region', 'nyc3', '--key-size', '2048', '--poll-interval', '0.05', '--wait-timeout', '20'];

describe('restore --region creates the droplets of a restored cluster', () => {
  let fake: FakeDigitalOcean;
  let s3: CheckedS3;
  let env: Record<string, string>;
  let dir: string;
  let sha256: string;

  beforeAll(async () => {
    fake = await startFakeDigitalOcean({ domains: ['example.com'] });
    s3 = await startCheckedS3(join(newDir(), 's3rver'), [BUCKET]);
    env = { DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url, SPACES_ACCESS_KEY_ID: s3.accessKeyId, SPACES_SECRET_ACCESS_KEY: s3.secretAccessKey };
    dir = newDir();
    const body = randomBytes(2048);
    sha256 = createHash('sha256').update(body).digest('hex');
    const client = new S3Client({ endpoint: s3.url, region: 'nyc3', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'prod/20261203T080000Z-etcd1-rev77.db', Body: body, Metadata: { sha256 } }));
    client.destroy();
  });
  afterAll(async () => {
    await fake?.close();
    await s3?.close();
  });

  const bucket = () => ['--backup-url', `s3://${BUCKET}/prod`, '--backup-endpoint', s3.url];
  const userDataOf = () => [...fake.droplets.values()].map((droplet) => droplet.userData ?? '');

  it('create-droplets --backup-url: every droplet uploads, signing for the droplets\' region', async () => {
    const created = await runCli(['create-droplets', ...CREATE, ...bucket()], dir, env);
    expect(created.code, created.stderr).toBe(0);
    expect(userDataOf()).toHaveLength(3);
    for (const userData of userDataOf()) {
      expect(userData).toContain(`LoadCredential=backup:${NODE_PATHS.backupCredentials}`);
      expect(userData).toContain(`--bucket-url ${s3.url}/${BUCKET} --prefix prod/ --region nyc3`);
      expect(userData).not.toContain(NODE_PATHS.restoreScript);
    }
    expect(readFileSync(join(dir, 'out', 'etcd', 'cluster.json'), 'utf8')).not.toContain(s3.secretAccessKey);
  });

  it('is refused while the old cluster\'s droplets exist, and creates nothing', async () => {
    const before = readFileSync(join(dir, 'out', 'etcd', 'cluster.json'), 'utf8');
    const restored = await runCli(['restore', ...CREATE, ...bucket()], dir, env);
    expect(restored.code).toBe(1);
    expect(restored.stderr).toMatch(/droplets etcd-etcd1, etcd-etcd2, etcd-etcd3 of cluster etcd exist: a restore makes a new cluster .* destroy-droplets --cluster-name etcd/);
    expect(fake.droplets.size).toBe(3);
    expect(readFileSync(join(dir, 'out', 'etcd', 'cluster.json'), 'utf8')).toBe(before);
  });

  it('after destroy-droplets, creates droplets whose user-data restores the snapshot; a re-run creates nothing more', async () => {
    const destroyed = await runCli(['destroy-droplets', '--yes'], dir, env);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(fake.droplets.size).toBe(0);

    // --dry-run: the snapshot is listed, every change printed, nothing created or written.
    const requestsBefore = fake.requests.length;
    const folderBefore = folderSnapshot(join(dir, 'out'));
    const dryRun = await runCli(['restore', ...CREATE, ...bucket(), '--dry-run'], dir, env);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stderr).toContain('[dry-run] POST /v2/droplets');
    expect(dryRun.stdout).toMatch(/^Dry run: \d+ call\(s\) would change something \(listed above\); nothing was changed or written\.\n$/);
    expect(fake.requests.slice(requestsBefore).filter((request) => request.method !== 'GET')).toEqual([]);
    expect(fake.droplets.size).toBe(0);
    expect(folderSnapshot(join(dir, 'out'))).toEqual(folderBefore);

    const restored = await runCli(['restore', ...CREATE, ...bucket()], dir, env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(fake.droplets.size).toBe(3);
    const record = JSON.parse(readFileSync(join(dir, 'out', 'etcd', 'cluster.json'), 'utf8')) as { restoredFrom: unknown; initialClusterToken: string };
    expect(record.restoredFrom).toEqual({ source: `s3://${BUCKET}/prod/20261203T080000Z-etcd1-rev77.db`, sha256, revision: 77 });
    for (const userData of userDataOf()) {
      expect(userData).toContain(`${NODE_PATHS.restoreScript} --url-file ${NODE_PATHS.restoreUrlFile} --sha256 ${sha256} --name etcd`);
      expect(userData).toContain(`--initial-cluster-token ${record.initialClusterToken}`);
      expect(userData).toMatch(/X-Amz-Signature=[0-9a-f]{64}/);
    }
    expect(fake.violations).toEqual([]);
    const again = await runCli(['restore', ...CREATE, ...bucket()], dir, env);
    expect(again.code, again.stderr).toBe(0);
    expect(fake.droplets.size).toBe(3);
  });
});
