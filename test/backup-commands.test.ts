/**
 * The backup flags, `backups` and `restore` from the command line: usage errors name the field and
 * write nothing, the key pair is never printed or recorded, and what they render passes the real
 * `cloud-init schema` and `systemd-analyze verify`. The bucket is s3rver behind a front that
 * checks signature v4.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFolder } from '../src/cluster-folder.js';
import { openCluster } from '../src/day2/open-cluster.js';
import { readClusterPki } from '../src/pki/mint.js';
import { NODE_PATHS } from '../src/plan.js';
import { renderUserData } from '../src/render.js';
import { runCli, tempDirsRemovedAfterAll } from './support/cli.js';
import { rewriteNodePaths, runProcess, writeFilesOf } from './support/local-cluster.js';
import { startCheckedS3, type CheckedS3 } from './support/s3-sigv4.js';

const newDir = tempDirsRemovedAfterAll('backup-cli');
const BUCKET = 'acme-etcd';
const hasTools = (tool: string) => runProcess(tool, ['--version']).then((run) => run.code === 0, () => false);

describe('backup flags, backups and restore on the command line', () => {
  let server: CheckedS3;
  let env: Record<string, string>;
  let key: string;
  const sha256 = createHash('sha256');

  beforeAll(async () => {
    server = await startCheckedS3(join(newDir(), 's3rver'), [BUCKET]);
    env = { SPACES_ACCESS_KEY_ID: server.accessKeyId, SPACES_SECRET_ACCESS_KEY: server.secretAccessKey };
    // A snapshot as the upload script names and tags it (its bytes do not matter here).
    const body = randomBytes(4096);
    key = 'prod/20261203T080000Z-etcd2-rev4711.db';
    const client = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: { sha256: sha256.update(body).digest('hex'), member: 'etcd2', revision: '4711' } }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'prod/20261203T070000Z-etcd1-rev4000.db', Body: Buffer.from('older, no checksum recorded') }));
    client.destroy();
  });

  afterAll(async () => server?.close());

  const target = () => ['--backup-url', `s3://${BUCKET}/prod`, '--backup-endpoint', server.url];

  describe('usage errors name the field and the value, exit 2 and write nothing', () => {
    const cases: [string, () => string[], () => Record<string, string>, RegExp][] = [
      ['no key pair', () => ['gen-userdata', '--ips', '10.0.0.1', '--backup-url', 's3://acme-etcd/prod', '--backup-region', 'nyc3'], () => ({}), /backup-url: s3:\/\/acme-etcd\/prod\/ needs a key pair: set SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY/],
      ['half a key pair', () => ['gen-userdata', '--ips', '10.0.0.1', ...target()], () => ({ SPACES_ACCESS_KEY_ID: 'AK' }), /backup-url: SPACES_SECRET_ACCESS_KEY is not set \(SPACES_ACCESS_KEY_ID is\)/],
      ['a retain without a bucket', () => ['gen-userdata', '--ips', '10.0.0.1', '--backup-retain', '5'], () => env, /backup-retain: 5 needs backup-url/],
      ['backups with snapshots off', () => ['gen-userdata', '--ips', '10.0.0.1', '--no-snapshots', ...target()], () => env, /backup-url: "s3:\/\/acme-etcd\/prod" uploads the nodes' snapshots, and snapshots are off/],
      ['no endpoint or region', () => ['gen-userdata', '--ips', '10.0.0.1', '--backup-url', 's3://acme-etcd/prod'], () => env, /backup-endpoint: is required with backup-url "s3:\/\/acme-etcd\/prod"/],
      ['not an s3 URL', () => ['gen-userdata', '--ips', '10.0.0.1', '--backup-url', 'https://acme-etcd/prod', '--backup-region', 'nyc3'], () => env, /backup-url: "https:\/\/acme-etcd\/prod" is not s3:\/\/<bucket>\/<prefix>/],
      ['a password in the endpoint', () => ['gen-userdata', '--ips', '10.0.0.1', '--backup-url', 's3://acme-etcd/p', '--backup-endpoint', 'http://me:pw@host'], () => env, /backup-endpoint: "http:\/\/me:pw@host" is not a base URL/],
      ['a port out of range in the endpoint', () => ['backups', '--backup-url', 's3://acme-etcd/p', '--backup-endpoint', 'http://127.0.0.1:99999'], () => env, /backup-endpoint: "http:\/\/127\.0\.0\.1:99999" has port 99999, outside 1 to 65535/],
      ['port 0 in the endpoint', () => ['gen-userdata', '--ips', '10.0.0.1', '--backup-url', 's3://acme-etcd/p', '--backup-endpoint', 'http://127.0.0.1:0'], () => env, /backup-endpoint: "http:\/\/127\.0\.0\.1:0" has port 0, outside 1 to 65535/],
      ['an empty label in the endpoint host', () => ['restore', '--ips', '10.0.0.1', '--backup-url', 's3://acme-etcd/p', '--backup-endpoint', 'http://s3..example.com'], () => env, /backup-endpoint: "http:\/\/s3\.\.example\.com" has no valid host name/],
      ['a short IPv4 the URL parser rewrites', () => ['backups', '--backup-url', 's3://acme-etcd/p', '--backup-endpoint', 'http://127.1:9000'], () => env, /backup-endpoint: "http:\/\/127\.1:9000" has a host the URL parser reads as 127\.0\.0\.1/],
      ['an IPv4 out of range in the endpoint', () => ['backups', '--backup-url', 's3://acme-etcd/p', '--backup-endpoint', 'http://127.0.0.256'], () => env, /backup-endpoint: "http:\/\/127\.0\.0\.256" is not a valid URL/],
      ['a .. in the prefix', () => ['gen-userdata', '--ips', '10.0.0.1', '--backup-url', 's3://acme-etcd/a/../b', '--backup-region', 'nyc3'], () => env, /backup-url: "s3:\/\/acme-etcd\/a\/..\/b" has an empty, \. or \.\. segment/],
      ['restore without a bucket', () => ['restore', '--ips', '10.0.0.1'], () => env, /backup-url: is required: the s3:\/\/<bucket>\/<prefix> whose snapshot to restore/],
      ['restore with a URL life over 7 days', () => ['restore', '--ips', '10.0.0.1', ...target(), '--url-expiry', '200'], () => env, /url-expiry: "200" is not a whole number of hours from 1 to 168/],
      ['restore of a snapshot that is not there', () => ['restore', '--ips', '10.0.0.1', ...target(), '--snapshot', 'nope.db'], () => env, /snapshot: "nope.db" is not in s3:\/\/acme-etcd\/prod\//],
      ['create-droplets without a key pair, before any API call', () => ['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--backup-url', 's3://acme-etcd/prod'], () => ({ DIGITALOCEAN_TOKEN: 'x' }), /backup-url: s3:\/\/acme-etcd\/prod\/ needs a key pair/],
    ];
    it.each(cases)('%s', async (_name, args, envOf, message) => {
      const dir = newDir();
      const run = await runCli(args(), dir, envOf());
      expect(run.stderr).toMatch(message);
      expect(run.code).toBe(2);
      expect(existsSync(join(dir, 'out'))).toBe(false);
      expect(run.stdout + run.stderr).not.toContain(server.secretAccessKey);
    });
  });

  it('restore stops with exit 1 and writes nothing when the bucket refuses the key pair (the secret is not printed)', async () => {
    const dir = newDir();
    const wrong = 'wrong-secret-0123456789';
    const run = await runCli(['restore', '--ips', '10.0.0.1', ...target()], dir, { SPACES_ACCESS_KEY_ID: server.accessKeyId, SPACES_SECRET_ACCESS_KEY: wrong });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/\[api\] cannot list s3:\/\/acme-etcd\/prod\/ at http:\/\/127\.0\.0\.1:\d+: HTTP 403 SignatureDoesNotMatch/);
    expect(run.stderr).not.toContain(wrong);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('restore stops with exit 1 and writes nothing when the chosen snapshot has no recorded checksum', async () => {
    const dir = newDir();
    const run = await runCli(['restore', '--ips', '10.0.0.1', ...target(), '--snapshot', '20261203T070000Z-etcd1-rev4000.db'], dir, env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/has no recorded sha256 \(x-amz-meta-sha256\): it was not uploaded by etcd-cloudinit/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('a group- or world-readable backup-credentials in the folder is refused, naming the file and its mode, like ssh refuses a key', async () => {
    const dir = newDir();
    const gen = await runCli(['gen-userdata', '--ips', '127.0.0.21,127.0.0.22,127.0.0.23', '--key-size', '2048', ...target()], dir, env);
    expect(gen.code, gen.stderr).toBe(0);
    const file = join(dir, 'out', 'etcd', 'backup-credentials');
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(file, mode);
      const run = await runCli(['backups'], dir, {});
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toContain(`${file} has mode 0${mode.toString(8)}: the bucket key pair in it is readable by`);
      expect(run.stderr).toContain(`chmod 600 ${file}`);
      expect(run.stdout + run.stderr).not.toContain(server.secretAccessKey);
    }
    chmodSync(file, 0o600);
    const listed = await runCli(['backups', '--json'], dir, {});
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ skipped: 0, snapshots: [{ key }, {}] });
  });

  it('restore without --snapshot passes over newer snapshots with no recorded sha256 and takes the newest restorable one', async () => {
    const client = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    const body = randomBytes(512);
    const older = 'mixed/20261203T080000Z-etcd2-rev4711.db';
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: older, Body: body, Metadata: { sha256: createHash('sha256').update(body).digest('hex') } }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'mixed/20261203T090000Z-etcd3-rev4800.db', Body: Buffer.from('a copy made by hand') }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'mixed/notes.txt', Body: Buffer.from('not a snapshot') }));
    client.destroy();
    const dir = newDir();
    const run = await runCli(['restore', '--cluster-name', 'back', '--ips', '127.0.0.31,127.0.0.32,127.0.0.33', '--key-size', '2048', '--backup-url', `s3://${BUCKET}/mixed/`, '--backup-endpoint', server.url], dir, env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('restore: skipped 1 object whose names are not snapshots');
    expect(run.stderr).toContain('restore: passed over 1 newer snapshot(s) with no recorded sha256, which a node could not check (mixed/20261203T090000Z-etcd3-rev4800.db)');
    const record = JSON.parse(readFileSync(join(dir, 'out', 'back', 'cluster.json'), 'utf8')) as { restoredFrom: { source: string } };
    expect(record.restoredFrom.source).toBe(`s3://${BUCKET}/${older}`);
  });

  it('restore of an empty prefix says there is nothing to restore, exit 1, nothing written', async () => {
    const dir = newDir();
    const run = await runCli(['restore', '--ips', '10.0.0.1', '--backup-url', `s3://${BUCKET}/empty/`, '--backup-endpoint', server.url], dir, env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no snapshots in s3:\/\/acme-etcd\/empty\/: nothing to restore/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('backups lists only snapshots, newest first, as a table and as JSON', async () => {
    const dir = newDir();
    const json = await runCli(['backups', ...target(), '--json'], dir, env);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { snapshots: { key: string; member: string; revision: number; size: number; time: string; sha256?: string }[] };
    expect(report.snapshots.map((snapshot) => snapshot.key)).toEqual([key, 'prod/20261203T070000Z-etcd1-rev4000.db']);
    expect(report.snapshots[0]).toEqual({ key, time: '2026-12-03T08:00:00Z', member: 'etcd2', revision: 4711, size: 4096, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(report.snapshots[1]!.sha256).toBeUndefined();
    const table = await runCli(['backups', ...target()], dir, env);
    expect(table.stdout.split('\n')[2]).toMatch(/^2026-12-03 08:00:00\s+etcd2\s+4711\s+4\.0 KiB\s+[0-9a-f]{64}\s+prod\/20261203T080000Z-etcd2-rev4711\.db$/);
    expect(table.stdout).toContain('(none recorded)');
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it.each([
    ['an IP-mode cluster', ['--ips', '10.0.0.1,10.0.0.2,10.0.0.3']],
    ['a --domain (DNS-member) cluster', ['--domain', 'db.example.com']],
  ])('on %s, day-2 commands render the key pair from the folder, with no key pair in the environment', async (_kind, members) => {
    const dir = newDir();
    const gen = await runCli(['gen-userdata', ...members, '--key-size', '2048', '--etcd-version', 'v3.5.21', ...target()], dir, env);
    expect(gen.code, gen.stderr).toBe(0);
    // What add-member, roll and repair start from: the folder alone.
    const cluster = openCluster(new ClusterFolder('out', 'etcd', dir));
    expect(cluster.plan.backup?.credentials?.accessKeyId).toBe(server.accessKeyId);
    const userData = renderUserData(cluster.plan, readClusterPki(cluster.plan, cluster.pki), 'etcd2');
    expect(writeFilesOf(userData).get(NODE_PATHS.backupCredentials)?.content).toBe(`access_key_id=${server.accessKeyId}\nsecret_access_key=${server.secretAccessKey}\n`);
    expect(userData).toBe(readFileSync(join(dir, 'out', 'etcd', 'user-data', 'etcd2.yaml'), 'utf8'));
  });

  describe('what gen-userdata --backup-url and restore render', () => {
    let dir: string;
    beforeAll(async () => {
      dir = newDir();
      const gen = await runCli(['gen-userdata', '--ips', '10.0.0.1,10.0.0.2,10.0.0.3', '--key-size', '2048', '--etcd-version', 'v3.5.21', '--backup-url', `s3://${BUCKET}/prod`, '--backup-region', 'fra1'], dir, env);
      expect(gen.code, gen.stderr).toBe(0);
      expect(gen.stdout + gen.stderr).not.toContain(server.secretAccessKey);
      const restore = await runCli(['restore', '--cluster-name', 'back', '--ips', '10.0.0.5,10.0.0.6,10.0.0.7', '--key-size', '2048', '--etcd-version', 'v3.5.21', ...target()], dir, env);
      expect(restore.code, restore.stderr).toBe(0);
      expect(restore.stdout + restore.stderr).not.toContain(server.secretAccessKey);
    });

    it('cluster.json records the bucket and where the restore came from; no secret, no signed URL', () => {
      const record = readFileSync(join(dir, 'out', 'etcd', 'cluster.json'), 'utf8');
      expect(JSON.parse(record).backup).toEqual({ url: `s3://${BUCKET}/prod/`, endpoint: 'https://fra1.digitaloceanspaces.com', region: 'fra1', retain: 168 });
      const restored = readFileSync(join(dir, 'out', 'back', 'cluster.json'), 'utf8');
      expect(JSON.parse(restored).restoredFrom).toEqual({ source: `s3://${BUCKET}/${key}`, sha256: expect.stringMatching(/^[0-9a-f]{64}$/), revision: 4711 });
      for (const text of [record, restored]) {
        expect(text).not.toContain(server.secretAccessKey);
        expect(text).not.toContain('X-Amz-Signature');
      }
    });

    it('the restored members upload too, and their user-data runs etcdutl (3.5) with a new token', () => {
      const userData = readFileSync(join(dir, 'out', 'back', 'user-data', 'etcd1.yaml'), 'utf8');
      const files = writeFilesOf(userData);
      expect(files.get(NODE_PATHS.backupCredentials)?.permissions).toBe('0600');
      expect(userData).toContain(`${NODE_PATHS.restoreScript} --url-file ${NODE_PATHS.restoreUrlFile} --sha256 `);
      expect(userData).toContain('--etcdutl /usr/local/bin/etcdutl');
      const record = JSON.parse(readFileSync(join(dir, 'out', 'back', 'cluster.json'), 'utf8')) as { initialClusterToken: string };
      expect(userData).toContain(`--initial-cluster-token ${record.initialClusterToken}`);
      expect(userData).toContain(`initial-cluster-token: "${record.initialClusterToken}"`);
    });

    it.each([['etcd', 'gen-userdata --backup-url'], ['back', 'restore']])('cloud-init schema accepts the user-data of %s (%s)', async (cluster) => {
      for (const member of ['etcd1', 'etcd2', 'etcd3']) {
        const run = await runProcess('cloud-init', ['schema', '--config-file', join(dir, 'out', cluster, 'user-data', `${member}.yaml`)]);
        expect(run.stdout + run.stderr).toContain('Valid cloud-config');
        expect(run.code).toBe(0);
      }
    });

    it('systemd-analyze verify accepts the snapshot unit and the upload unit it starts (and reports a broken one)', async (context) => {
      if (!(await hasTools('systemd-analyze'))) context.skip();
      const root = newDir();
      const files = writeFilesOf(readFileSync(join(dir, 'out', 'etcd', 'user-data', 'etcd2.yaml'), 'utf8'));
      for (const [path, file] of files) {
        mkdirSync(join(root, path, '..'), { recursive: true });
        writeFileSync(join(root, path), rewriteNodePaths(file.content, root), { mode: Number.parseInt(file.permissions ?? '0644', 8) });
      }
      const verify = async (edit: (unit: string) => string) => {
        const unitDir = join(root, 'verify', String(Math.random()).slice(2));
        mkdirSync(unitDir, { recursive: true });
        const units = [NODE_PATHS.snapshotService, NODE_PATHS.backupUploadService, NODE_PATHS.snapshotTimer, NODE_PATHS.unitFile].map((path) => {
          const target = join(unitDir, basename(path));
          const text = rewriteNodePaths(files.get(path)!.content, root);
          writeFileSync(target, path === NODE_PATHS.backupUploadService ? edit(text) : text);
          return target;
        });
        return runProcess('systemd-analyze', ['verify', ...units]);
      };
      const clean = await verify((unit) => unit);
      expect(clean.stderr).toBe('');
      expect(clean.code).toBe(0);
      const broken = await verify((unit) => unit.replace(/^ExecStart=\//m, 'ExecStart=relative/'));
      expect(broken.stderr).toMatch(/etcd-backup-upload\.service:\d+: .*relative\/\S*etcd-backup-upload\.sh/);
    });
  });
});
