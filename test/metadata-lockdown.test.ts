/**
 * DNS-member mode locks the metadata service down to root (it serves the droplet's user-data, with
 * the member key). The script from the generated user-data runs for real, with the real nft, in a
 * network namespace of the test's own: a stand-in metadata service on 169.254.169.254 answers root,
 * and no longer answers any other user.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../src/plan.js';
import { runCli, tempDir } from './support/cli.js';

const execFileAsync = promisify(execFile);
const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/nft') && existsSync('/usr/bin/setpriv');
const METADATA = '169.254.169.254';

describe.runIf(canRun)('metadata-lockdown.sh on the real nftables', () => {
  const dir = tempDir('mdlock');
  const namespace = `mdlock-${process.pid}`;
  const inside = (argv: string[]) => ['ip', 'netns', 'exec', namespace, ...argv];
  let server: ChildProcess | undefined;
  let script: string;
  let unit: string;

  const run = async (argv: string[]) => {
    try {
      const { stdout, stderr } = await execFileAsync(argv[0]!, argv.slice(1), { timeout: 20_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof failure.code === 'number' ? failure.code : -1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
    }
  };
  /** curl of the metadata service in the namespace, as root or as nobody. */
  const ask = (user: 'root' | 'nobody') =>
    run(inside([...(user === 'nobody' ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []), 'curl', '-sS', '--max-time', '5', `http://${METADATA}/metadata/v1/interfaces/private/0/ipv4/address`]));

  beforeAll(async () => {
    const generated = await runCli(['gen-userdata', '--domain', 'example.com', '--key-size', '2048'], dir);
    expect(generated.code, generated.stderr).toBe(0);
    const config = parseYaml(readFileSync(join(dir, 'out/etcd/user-data/etcd1.yaml'), 'utf8')) as { write_files: { path: string; content: string }[]; runcmd: string[][] };
    const file = (path: string) => config.write_files.find((entry) => entry.path === path)?.content ?? '';
    script = join(dir, 'metadata-lockdown.sh');
    writeFileSync(script, file(NODE_PATHS.metadataLockdownScript), { mode: 0o755 });
    unit = file(NODE_PATHS.metadataLockdownService);
    expect(config.runcmd[0]!.at(-1)).toContain('systemctl enable --no-reload --now etcd-metadata-lockdown.service');

    await execFileAsync('ip', ['netns', 'add', namespace]);
    await execFileAsync('ip', inside(['ip', 'link', 'set', 'lo', 'up']).slice(1));
    await execFileAsync('ip', inside(['ip', 'addr', 'add', `${METADATA}/32`, 'dev', 'lo']).slice(1));
    const [command, ...args] = inside(['node', '-e', `require('node:http').createServer((q, r) => r.end('10.116.0.7')).listen(80, '${METADATA}', () => console.log('up'))`]);
    server = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the stand-in metadata service did not start')), 15_000);
      server!.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  });

  afterAll(async () => {
    server?.kill('SIGKILL');
    await run(['ip', 'netns', 'del', namespace]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the unit runs the script with the metadata address, before etcd, at every boot', () => {
    expect(unit).toContain(`ExecStart=${NODE_PATHS.metadataLockdownScript} ${METADATA}\n`);
    expect(unit).toContain('Before=etcd.service\n');
    expect(unit).toContain('WantedBy=multi-user.target\n');
  });

  it('before: any user reads the metadata service (the hole the lockdown closes)', async () => {
    expect(await ask('nobody')).toMatchObject({ code: 0, stdout: '10.116.0.7' });
  });

  it('after: root still gets its address, any other user is refused; a re-run adds no second rule', async () => {
    const first = await run(inside(['sh', script, METADATA]));
    expect(first, first.stderr).toEqual({ code: 0, stdout: `etcd-cloudinit: metadata-lockdown: only root may reach ${METADATA}\n`, stderr: '' });
    expect(await ask('root')).toMatchObject({ code: 0, stdout: '10.116.0.7' });
    const refused = await ask('nobody');
    expect(refused.code, refused.stdout).toBe(7);
    expect(refused.stdout).toBe('');

    expect((await run(inside(['sh', script, METADATA]))).code).toBe(0);
    const table = await run(inside(['nft', 'list', 'table', 'inet', 'etcd_cloudinit_metadata']));
    expect(table.stdout.match(/meta skuid != 0/g)).toHaveLength(1);
    expect(table.stdout).toContain(`ip daddr ${METADATA} meta skuid != 0 reject`);
  });

  it('refuses an argument that is not an address', async () => {
    const bad = await run(inside(['sh', script, '169.254.169.254; reboot']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('etcd-cloudinit: metadata-lockdown: not an IPv4 address: 169.254.169.254; reboot\n');
  });
});
