/**
 * DNS-member mode locks the metadata service down to root (it serves the droplet's user-data, with
 * the member key). The script from the generated user-data runs for real, with the real nft, in a
 * network namespace of the test's own: a stand-in metadata service on 169.254.169.254 answers root,
 * and no longer answers any other user.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

  /**
   * A node image without nft and iptables: PATH holds only sh, timeout and a stand-in apt-get
   * (`apt-get` is the script text); the stand-in logs its calls, and its install puts an `nft` (the
   * real one, by wrapper) on that PATH, as the real package would.
   */
  const withoutFirewallTools = (name: string, aptGet: string | undefined) => {
    const bin = join(dir, name);
    mkdirSync(bin);
    symlinkSync('/bin/sh', join(bin, 'sh'));
    symlinkSync('/usr/bin/timeout', join(bin, 'timeout'));
    if (aptGet !== undefined) writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "DEBIAN_FRONTEND=$DEBIAN_FRONTEND apt-get $*" >> ${bin}/apt-get.log\n${aptGet}`, { mode: 0o755 });
    const log = () => (existsSync(join(bin, 'apt-get.log')) ? readFileSync(join(bin, 'apt-get.log'), 'utf8') : '');
    const runScript = (env: Record<string, string> = {}) =>
      run(inside(['env', '-i', `PATH=${bin}`, ...Object.entries(env).map(([key, value]) => `${key}=${value}`), '/bin/sh', script, METADATA]));
    return { bin, log, runScript };
  };
  const NO_TOOL_LINE = `etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed: every local user can read this droplet's user-data (with the member key) from ${METADATA}\n`;
  const FAILED_LINE = 'etcd-cloudinit: metadata-lockdown: installing nftables failed (see above), so etcd stays stopped; install nftables or iptables on this machine (or in its image), then finish the boot as root with: sh /var/lib/cloud/instance/scripts/runcmd\n';
  const unlock = () => run(inside(['nft', 'delete', 'table', 'inet', 'etcd_cloudinit_metadata']));

  it('without nft and iptables: installs nftables with apt-get (update, then install), then applies the rule', async () => {
    await unlock();
    expect(await ask('nobody')).toMatchObject({ code: 0, stdout: '10.116.0.7' });
    const image = withoutFirewallTools('apt-installs', `case "$*" in *install*) printf '#!/bin/sh\\nexec /usr/sbin/nft "$@"\\n' > ${join(dir, 'apt-installs')}/nft; /bin/chmod 0755 ${join(dir, 'apt-installs')}/nft ;; esac\n`);
    const result = await image.runScript();
    expect(result, result.stderr).toEqual({
      code: 0,
      stdout: `etcd-cloudinit: metadata-lockdown: only root may reach ${METADATA}\n`,
      stderr: 'etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed; installing nftables with apt-get (at most 300 s)\n',
    });
    expect(image.log()).toBe(
      [
        'DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=60 update',
        'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=60 install --no-install-recommends nftables',
        '',
      ].join('\n'),
    );
    expect(await ask('root')).toMatchObject({ code: 0, stdout: '10.116.0.7' });
    expect((await ask('nobody')).code).toBe(7);

    // The next boot finds nft and installs nothing.
    expect((await image.runScript()).code).toBe(0);
    expect(image.log().split('\n')).toHaveLength(3);
  });

  it('when the install fails: the same clear line, what to do, a non-zero exit and no rule', async () => {
    await unlock();
    const image = withoutFirewallTools('apt-fails', 'case "$*" in *install*) echo "E: Unable to locate package nftables" >&2; exit 100 ;; esac\n');
    const result = await image.runScript();
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      [
        'etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed; installing nftables with apt-get (at most 300 s)\n',
        'E: Unable to locate package nftables\n',
        'etcd-cloudinit: metadata-lockdown: installing nftables with apt-get failed (exit 100)\n',
        NO_TOOL_LINE,
        FAILED_LINE,
      ].join(''),
    );
    expect((await run(inside(['nft', 'list', 'table', 'inet', 'etcd_cloudinit_metadata']))).code).not.toBe(0);
  });

  it('without a package manager: says so, then the same clear line', async () => {
    const image = withoutFirewallTools('no-manager', undefined);
    const result = await image.runScript();
    expect(result).toEqual({ code: 1, stdout: '', stderr: `etcd-cloudinit: metadata-lockdown: no apt-get, dnf or yum to install nftables with\n${NO_TOOL_LINE}${FAILED_LINE}` });
  });

  it('a hanging package manager is stopped at the bound (ETCD_CLOUDINIT_INSTALL_TIMEOUT_SECONDS, 300 by default)', async () => {
    const image = withoutFirewallTools('apt-hangs', `echo $$ > ${join(dir, 'apt-hangs')}/pid\nexec /bin/sleep 600\n`);
    const started = Date.now();
    const result = await image.runScript({ ETCD_CLOUDINIT_INSTALL_TIMEOUT_SECONDS: '2' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      [
        'etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed; installing nftables with apt-get (at most 2 s)\n',
        'etcd-cloudinit: metadata-lockdown: installing nftables with apt-get did not finish within 2 s; stopped it\n',
        NO_TOOL_LINE,
        FAILED_LINE,
      ].join(''),
    );
    // The package manager itself is gone, not left running behind the failed unit.
    const pid = Number(readFileSync(join(image.bin, 'pid'), 'utf8'));
    const state = existsSync(`/proc/${pid}/stat`) ? /\) (\w) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] : 'gone';
    expect(['gone', 'Z']).toContain(state);
    expect(await image.runScript({ ETCD_CLOUDINIT_INSTALL_TIMEOUT_SECONDS: '2m' })).toMatchObject({ code: 2 });
  });

  it('refuses an argument that is not an address', async () => {
    const bad = await run(inside(['sh', script, '169.254.169.254; reboot']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('etcd-cloudinit: metadata-lockdown: not an IPv4 address: 169.254.169.254; reboot\n');
  });
});
