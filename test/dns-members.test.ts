import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { tempDir } from './support/cli.js';
import { fixtureKeySource } from './support/golden.js';
import { adminTls, ETCD_BIN, ETCDCTL_BIN, loopbackBlock, readMemberUserData, relocateNodePaths, rewriteNodePaths, tailOf, waitFor } from './support/local-cluster.js';

const execFileAsync = promisify(execFile);

async function gen(args: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const code = await main(
    ['gen-userdata', '--key-size', '2048', ...args],
    { env: {}, stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, cwd },
    { keySource: fixtureKeySource },
  );
  return { code, stdout, stderr };
}

/** A stand-in for the droplet metadata service: answers one fixed body on every path. */
async function metadataServer(body: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metadata/v1/interfaces/private/0/ipv4/address`, server };
}

describe('DNS-member mode input', () => {
  it.each([
    [['--hostnames', 'a.example.com,b.example.com'], '[validate] ips: 2 members is an even count'],
    [['--hostnames', 'A.example.com'], '[validate] hostnames[0]: "A.example.com" is not a lowercase fully qualified DNS name'],
    [['--hostnames', 'single-label'], '[validate] hostnames[0]: "single-label" is not a lowercase fully qualified DNS name'],
    [['--hostnames', 'a.example.com,a.example.com,c.example.com'], '[validate] hostnames[1]: "a.example.com" is already used by hostnames[0]'],
    [['--hostnames', 'a.example.com', '--names', 'x,y'], '[validate] names: 2 names given for 1 hostnames; give one name per hostname'],
    [['--hostnames', 'a.example.com', '--ips', '10.0.0.1'], '[validate] hostnames: give members one way only (ips and hostnames were both given)'],
    [['--domain', 'example.com', '--names', 'ca'], '[validate] names[0]: "ca" is reserved for pki/ca.crt'],
    [['--domain', 'example', '--names', 'a'], '[validate] domain: "example" is not a lowercase fully qualified DNS name'],
  ])('%j', async (args, message) => {
    const dir = tempDir('dnsv');
    try {
      const result = await gen(args, dir);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('DNS-member mode output', () => {
  const dir = tempDir('dns');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names members by DNS in certificates and URLs, and never names an address it cannot know', async () => {
    const result = await gen(['--domain', 'example.com', '--cluster-name', 'acc'], dir);
    expect(result.code, result.stderr).toBe(0);
    const pki = join(dir, 'out', 'acc', 'pki');
    const ca = new X509Certificate(readFileSync(join(pki, 'ca.crt')));
    for (const member of ['etcd1', 'etcd2', 'etcd3']) {
      const cert = new X509Certificate(readFileSync(join(pki, `${member}.crt`)));
      expect(cert.verify(ca.publicKey)).toBe(true);
      // The last name is the cluster's stable client name (issue 29): --domain gives <cluster-name>.<domain>.
      expect(cert.subjectAltName).toBe(`DNS:acc-${member}.example.com, IP Address:127.0.0.1, DNS:${member}, DNS:localhost, DNS:acc.example.com`);
      expect(cert.checkHost(`acc-${member}.example.com`)).toBe(`acc-${member}.example.com`);
      expect(cert.checkHost('acc.example.com')).toBe('acc.example.com');
    }
    const cluster = JSON.parse(readFileSync(join(dir, 'out', 'acc', 'cluster.json'), 'utf8')) as { initialCluster: string; members: { hostname: string; ip?: string }[] };
    expect(cluster.initialCluster).toBe('etcd1=https://acc-etcd1.example.com:2380,etcd2=https://acc-etcd2.example.com:2380,etcd3=https://acc-etcd3.example.com:2380');
    expect(cluster.members.map((m) => m.hostname)).toEqual(['acc-etcd1.example.com', 'acc-etcd2.example.com', 'acc-etcd3.example.com']);
    expect(cluster.members.every((m) => m.ip === undefined)).toBe(true);

    const member = readMemberUserData(join(dir, 'out', 'acc', 'user-data', 'etcd1.yaml'));
    // The config is written as a template; the unit fills in the address before each start.
    expect(member.files.has('/etc/etcd/etcd.conf.yaml')).toBe(false);
    const template = member.files.get('/etc/etcd/etcd.conf.yaml.in')!.content;
    expect(template).toContain('listen-peer-urls: "https://@PRIVATE_IPV4@:2380"');
    expect(template).toContain('listen-client-urls: "https://@PRIVATE_IPV4@:2379,https://127.0.0.1:2379"');
    expect(template).toContain('initial-advertise-peer-urls: "https://acc-etcd1.example.com:2380"');
    expect(template).toContain('advertise-client-urls: "https://acc-etcd1.example.com:2379"');
    // The unit is the one every member and baked image shares; the start step is a drop-in.
    const unit = member.files.get('/etc/systemd/system/etcd.service')!.content;
    expect(unit).not.toContain('ExecStartPre');
    expect(unit).toContain('Restart=on-failure');
    const dropIn = member.files.get('/etc/systemd/system/etcd.service.d/listen-address.conf')!.content;
    expect(dropIn).toContain(
      '[Service]\nExecStartPre=+/usr/local/lib/etcd-cloudinit/listen-address.sh /etc/etcd/etcd.conf.yaml.in /etc/etcd/etcd.conf.yaml http://169.254.169.254/metadata/v1/interfaces/private/0/ipv4/address @PRIVATE_IPV4@\n',
    );
    expect(member.files.get('/usr/local/lib/etcd-cloudinit/listen-address.sh')?.permissions).toBe('0755');
  });
});

const hasSystemdAnalyze = existsSync('/usr/bin/systemd-analyze') && existsSync('/usr/lib/systemd/system/sysinit.target');
describe.skipIf(!hasSystemdAnalyze)('systemd accepts the unit with the DNS-member drop-in', () => {
  const dir = tempDir('sdv');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `systemd-analyze verify` in a root holding the rendered unit files, the system's own units, and stand-in executables. */
  const verify = async (dropIn: (text: string) => string) => {
    const root = join(dir, `root-${Math.random().toString(36).slice(2)}`);
    const member = readMemberUserData(join(dir, 'out', 'etcd', 'user-data', 'etcd1.yaml'));
    for (const [path, file] of member.files) {
      if (!path.startsWith('/etc/systemd/')) continue;
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), path.endsWith('.conf') ? dropIn(file.content) : file.content);
    }
    for (const executable of ['/usr/local/bin/etcd', '/usr/local/lib/etcd-cloudinit/listen-address.sh', '/usr/local/lib/etcd-cloudinit/metadata-lockdown.sh']) {
      mkdirSync(join(root, executable, '..'), { recursive: true });
      writeFileSync(join(root, executable), '#!/bin/sh\n', { mode: 0o755 });
    }
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    await execFileAsync('cp', ['-a', '/usr/lib/systemd/system', join(root, 'usr/lib/systemd/')]);
    const { stdout, stderr } = await execFileAsync('systemd-analyze', ['verify', `--root=${root}`, 'etcd.service', 'etcd-metadata-lockdown.service'], { timeout: 60_000 }).catch(
      (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: `${error.stderr ?? ''}(exit non-zero)` }),
    );
    return stdout + stderr;
  };

  beforeAll(async () => {
    expect((await gen(['--domain', 'example.com'], dir)).code).toBe(0);
  });

  it('verifies cleanly', async () => {
    expect(await verify((text) => text)).toBe('');
  });

  it('can fail: a broken ExecStartPre in the drop-in is reported', async () => {
    expect(await verify((text) => text.replace('ExecStartPre=+', 'ExecStartPre=+ '))).toMatch(/listen-address\.conf:\d+: .*command line/i);
  });
});

describe('listen-address.sh (the ExecStartPre of DNS-member mode)', () => {
  const dir = tempDir('listen');
  const script = join(dir, 'listen-address.sh');
  const template = join(dir, 'etcd.conf.yaml.in');
  const config = join(dir, 'etcd.conf.yaml');
  const servers: Server[] = [];

  beforeAll(async () => {
    const result = await gen(['--domain', 'example.com'], dir);
    expect(result.code, result.stderr).toBe(0);
    const member = readMemberUserData(join(dir, 'out', 'etcd', 'user-data', 'etcd1.yaml'));
    writeFileSync(script, member.files.get('/usr/local/lib/etcd-cloudinit/listen-address.sh')!.content);
    chmodSync(script, 0o755);
    writeFileSync(template, member.files.get('/etc/etcd/etcd.conf.yaml.in')!.content);
  });
  afterAll(() => {
    servers.forEach((server) => server.close());
    rmSync(dir, { recursive: true, force: true });
  });

  const runScript = async (url: string) => {
    try {
      const { stdout, stderr } = await execFileAsync('sh', [script, template, config, url, '@PRIVATE_IPV4@'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCD_CLOUDINIT_METADATA_TRIES: '2' },
        timeout: 30_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  };

  it('fills in the private IPv4 from the metadata service', async () => {
    const { url, server } = await metadataServer('10.116.0.7');
    servers.push(server);
    const result = await runScript(url);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('etcd-cloudinit: listen-address: etcd listens on 10.116.0.7\n');
    const written = readFileSync(config, 'utf8');
    expect(written).toContain('listen-peer-urls: "https://10.116.0.7:2380"');
    expect(written).toContain('listen-client-urls: "https://10.116.0.7:2379,https://127.0.0.1:2379"');
    expect(written).not.toContain('@PRIVATE_IPV4@');
    expect(written).toBe(readFileSync(template, 'utf8').replaceAll('@PRIVATE_IPV4@', '10.116.0.7'));
  });

  it('fails (so systemd retries) on an answer that is not an address, leaving the old config', async () => {
    writeFileSync(config, '# the config of the previous start\n');
    const before = readFileSync(config, 'utf8');
    const { url, server } = await metadataServer('<html>not found</html>');
    servers.push(server);
    const result = await runScript(url);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`etcd-cloudinit: listen-address: no private IPv4 from ${url} after 2 tries\n`);
    expect(readFileSync(config, 'utf8')).toBe(before);
  });
});

/**
 * The real etcd in DNS-member mode: names resolve through a private /etc/hosts (a mount namespace
 * per process, so the machine's own file is untouched), listen addresses come from listen-address.sh
 * asking a stand-in metadata service, certificates carry only the names.
 */
const canUnshare = existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN) && process.getuid?.() === 0;
describe.skipIf(!canUnshare)('a DNS-member cluster on the real etcd', () => {
  const dir = tempDir('dnsetcd');
  const ips = loopbackBlock(3);
  const domain = 'dns.test';
  const hostnames = ['etcd1', 'etcd2', 'etcd3'].map((name) => `etcd-${name}.${domain}`);
  const hostsFile = join(dir, 'hosts');
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  const tls = adminTls(join(dir, 'out', 'etcd', 'pki'));
  const endpoints = hostnames.map((host) => `https://${host}:2379`);

  /** argv run with hostsFile as /etc/hosts. */
  const inNamespace = (argv: string[]) => ['unshare', '-m', 'sh', '-c', `mount --bind "$0" /etc/hosts && exec "$@"`, hostsFile, ...argv];

  const etcdctlNs = async (args: string[]) => {
    const [command, ...rest] = inNamespace([ETCDCTL_BIN, `--endpoints=${endpoints.join(',')}`, '--dial-timeout=3s', '--command-timeout=5s', `--cacert=${tls.cacert}`, `--cert=${tls.cert}`, `--key=${tls.key}`, ...args]);
    try {
      const { stdout, stderr } = await execFileAsync(command!, rest, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCDCTL_API: '3' }, timeout: 20_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof failure.code === 'number' ? failure.code : 1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? String(error) };
    }
  };

  beforeAll(async () => {
    writeFileSync(hostsFile, `127.0.0.1 localhost\n${hostnames.map((host, index) => `${ips[index]} ${host}`).join('\n')}\n`);
    const generated = await gen(['--hostnames', hostnames.join(','), '--etcd-version', 'v3.4.23'], dir);
    expect(generated.code, generated.stderr).toBe(0);
    for (const [index, name] of ['etcd1', 'etcd2', 'etcd3'].entries()) {
      const member = readMemberUserData(join(dir, 'out', 'etcd', 'user-data', `${name}.yaml`));
      const root = join(dir, 'nodes', name);
      // Lay out write_files under root, node paths moved under it (as the IP-mode harness does).
      // Also drop the 127.0.0.1:2379 listener: on a droplet loopback is its own, here three members share it.
      const relocate = (text: string) =>
        text
          .replace(/(["\s:=])(\/(?:etc|var)\/[^\s",]+)/g, (_all, lead: string, path: string) => `${lead}${root}${path}`)
          .replace(',https://127.0.0.1:2379', '');
      for (const file of member.files.values()) {
        const target = join(root, file.path);
        mkdirSync(join(target, '..'), { recursive: true });
        writeFileSync(target, file.path.includes('.yaml') ? relocate(file.content) : file.content, { mode: Number.parseInt(file.permissions ?? '0644', 8) });
      }
      mkdirSync(join(root, 'var/lib/etcd'), { recursive: true, mode: 0o700 });
      // The drop-in's ExecStartPre, with the metadata service replaced by this member's stand-in.
      const dropIn = member.files.get('/etc/systemd/system/etcd.service.d/listen-address.conf')!.content;
      const pre = dropIn.split('\n').find((line) => line.startsWith('ExecStartPre=+'))!.slice('ExecStartPre=+'.length).split(' ');
      const { url, server } = await metadataServer(ips[index]!);
      servers.push(server);
      const [script, template, config, , placeholder] = pre as [string, string, string, string, string];
      await execFileAsync('sh', [join(root, script), join(root, template), join(root, config), url, placeholder], { timeout: 30_000 });
      const log = createWriteStream(join(root, 'etcd.log'));
      const [command, ...args] = inNamespace([ETCD_BIN, '--config-file', join(root, config)]);
      const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.pipe(log);
      child.stderr?.pipe(log);
      children.push(child);
    }
    try {
      await waitFor('a healthy DNS-member cluster', async () => {
        const health = await etcdctlNs(['endpoint', 'health', '--cluster']);
        return { ok: health.code === 0, value: health.stderr || health.stdout };
      }, 60_000);
    } catch (error) {
      const logs = ['etcd1', 'etcd2', 'etcd3'].map((name) => `--- ${name}\n${tailOf(join(dir, 'nodes', name, 'etcd.log'))}`).join('\n');
      throw new Error(`${(error as Error).message}\n${logs}`);
    }
  });

  afterAll(async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    servers.forEach((server) => server.close());
    if (!process.env.KEEP_DNS_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it('forms a cluster whose peers and clients use the names', async () => {
    const list = await etcdctlNs(['member', 'list', '-w', 'json']);
    expect(list.code, list.stderr).toBe(0);
    const members = (JSON.parse(list.stdout) as { members: { name: string; peerURLs: string[]; clientURLs: string[] }[] }).members;
    expect(members.map((m) => m.name).sort()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    expect(members.flatMap((m) => m.peerURLs).sort()).toEqual(hostnames.map((host) => `https://${host}:2380`));
    expect(members.flatMap((m) => m.clientURLs).sort()).toEqual(hostnames.map((host) => `https://${host}:2379`));
    const put = await etcdctlNs(['put', '/dns/key', 'resolved']);
    expect(put.code, put.stderr).toBe(0);
  });
});

/** Runs the rendered listen-address.sh with `source` as its SOURCE word; `netns`: in a fresh network namespace whose loopback has these extra addresses. */
async function runListenAddress(dir: string, source: string, options: { netnsAddresses?: readonly string[]; env?: Record<string, string> } = {}) {
  const script = join(dir, 'listen-address.sh');
  const template = join(dir, 'etcd.conf.yaml.in');
  const config = join(dir, 'etcd.conf.yaml');
  const argv = ['sh', script, template, config, source, '@PRIVATE_IPV4@'];
  const command = options.netnsAddresses
    ? ['unshare', '-n', 'sh', '-c', `ip link set lo up && ${options.netnsAddresses.map((address) => `ip addr add ${address} dev lo`).join(' && ')} && exec "$@"`, 'netns', ...argv]
    : argv;
  try {
    const { stdout, stderr } = await execFileAsync(command[0]!, command.slice(1), {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCD_CLOUDINIT_METADATA_TRIES: '1', ...options.env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr, config: readFileSync(config, 'utf8') };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr, config: undefined };
  }
}

describe('DNS-member mode on any cloud: --listen-cidr and --listen-from instance-data', () => {
  const dir = tempDir('anycloud');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Generates a one-member DNS cluster with these flags and lays out its listen-address.sh and config template in `into`. */
  const generate = async (into: string, flags: string[]) => {
    mkdirSync(into, { recursive: true });
    const result = await gen(['--hostnames', 'etcd1.any.test', '--names', 'etcd1', '--etcd-version', 'v3.4.23', ...flags], into);
    expect(result.code, result.stderr).toBe(0);
    const member = readMemberUserData(join(into, 'out', 'etcd', 'user-data', 'etcd1.yaml'));
    writeFileSync(join(into, 'listen-address.sh'), member.files.get('/usr/local/lib/etcd-cloudinit/listen-address.sh')!.content, { mode: 0o755 });
    writeFileSync(join(into, 'etcd.conf.yaml.in'), member.files.get('/etc/etcd/etcd.conf.yaml.in')!.content);
    const dropIn = member.files.get('/etc/systemd/system/etcd.service.d/listen-address.conf')!.content;
    return { member, source: /^ExecStartPre=\+\S+ \S+ \S+ (\S+) @PRIVATE_IPV4@$/m.exec(dropIn)?.[1], cluster: JSON.parse(readFileSync(join(into, 'out', 'etcd', 'cluster.json'), 'utf8')) as Record<string, unknown> };
  };

  it('renders the range into the start step, keeps the metadata lockdown, and records the choice for day-2 commands', async () => {
    const cidr = await generate(join(dir, 'cidr'), ['--listen-cidr', '10.0.0.0/8']);
    expect(cidr.source).toBe('cidr:10.0.0.0/8');
    expect(cidr.member.files.has('/etc/systemd/system/etcd-metadata-lockdown.service')).toBe(true);
    expect(cidr.cluster).toMatchObject({ listenFrom: { from: 'cidr', cidr: '10.0.0.0/8' } });
    const { openCluster } = await import('../src/day2/open-cluster.js');
    const { ClusterFolder } = await import('../src/cluster-folder.js');
    expect(openCluster(new ClusterFolder('out', 'etcd', join(dir, 'cidr'))).plan.listenAddress).toMatchObject({ lookup: 'cidr:10.0.0.0/8' });
    const instance = await generate(join(dir, 'instance'), ['--listen-from', 'instance-data']);
    expect(instance.source).toBe('instance-data:ds.meta_data.local_ipv4');
    expect(instance.cluster).toMatchObject({ listenFrom: { from: 'instance-data' } });
    const metadata = await generate(join(dir, 'metadata'), []);
    expect(metadata.source).toBe('http://169.254.169.254/metadata/v1/interfaces/private/0/ipv4/address');
    expect(metadata.cluster).toMatchObject({ listenFrom: { from: 'do-metadata' } });
  });

  it('--listen-cidr: picks the one address of this host in the range (127.0.0.0/8 here: loopback)', async () => {
    const into = join(dir, 'host');
    await generate(into, ['--listen-cidr', '127.0.0.0/8']);
    const { stdout: addresses } = await execFileAsync('ip', ['-4', '-o', 'addr', 'show']);
    const inRange = [...addresses.matchAll(/ inet (127\.[0-9.]+)\//g)].map((match) => match[1]);
    const result = await runListenAddress(into, 'cidr:127.0.0.0/8');
    if (inRange.length !== 1) return expect(result.code).toBe(1);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`etcd-cloudinit: listen-address: etcd listens on ${inRange[0]}\n`);
    expect(result.config).toContain(`listen-peer-urls: "https://${inRange[0]}:2380"`);
    expect(result.config).toContain(`listen-metrics-urls: "http://${inRange[0]}:2381"`);
  });

  it.skipIf(!canUnshare)('--listen-cidr: one address in the range is taken; none or two fail the start with one journal line', async () => {
    const into = join(dir, 'netns');
    await generate(into, ['--listen-cidr', '127.77.0.0/16']);
    const one = await runListenAddress(into, 'cidr:127.77.0.0/16', { netnsAddresses: ['127.77.0.5/16', '127.78.0.9/16'] });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe('etcd-cloudinit: listen-address: etcd listens on 127.77.0.5\n');
    expect(one.config).toContain('listen-client-urls: "https://127.77.0.5:2379,https://127.0.0.1:2379"');
    writeFileSync(join(into, 'etcd.conf.yaml'), '# the config of the previous start\n');
    const none = await runListenAddress(into, 'cidr:127.77.0.0/16', { netnsAddresses: ['127.78.0.9/16'] });
    expect(none).toMatchObject({ code: 1, stderr: 'etcd-cloudinit: listen-address: no IPv4 address of this host is inside 127.77.0.0/16 (ip -4 addr show) after 1 tries\n' });
    const two = await runListenAddress(into, 'cidr:127.77.0.0/16', { netnsAddresses: ['127.77.0.5/16', '127.77.1.6/16'] });
    expect(two).toMatchObject({ code: 1, stderr: 'etcd-cloudinit: listen-address: 2 IPv4 addresses of this host are inside 127.77.0.0/16 (127.77.0.5 127.77.1.6); give a narrower --listen-cidr after 1 tries\n' });
    expect(readFileSync(join(into, 'etcd.conf.yaml'), 'utf8')).toBe('# the config of the previous start\n');
  });

  it.skipIf(!existsSync('/usr/bin/cloud-init'))('--listen-from instance-data: the real cloud-init query reads local-ipv4 from the instance data', async () => {
    const into = join(dir, 'idata');
    await generate(into, ['--listen-from', 'instance-data']);
    // An EC2-shaped instance-data.json, as cloud-init writes it under /run/cloud-init/.
    const instanceData = join(into, 'instance-data.json');
    writeFileSync(instanceData, JSON.stringify({ v1: { cloud_name: 'aws', platform: 'ec2' }, ds: { meta_data: { 'instance-id': 'i-0abc', 'local-ipv4': '10.0.3.21' } } }));
    const found = await runListenAddress(into, 'instance-data:ds.meta_data.local_ipv4', { env: { ETCD_CLOUDINIT_INSTANCE_DATA: instanceData } });
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toBe('etcd-cloudinit: listen-address: etcd listens on 10.0.3.21\n');
    writeFileSync(instanceData, JSON.stringify({ v1: { cloud_name: 'hetzner' }, ds: { meta_data: { 'instance-id': '42' } } }));
    const missing = await runListenAddress(into, 'instance-data:ds.meta_data.local_ipv4', { env: { ETCD_CLOUDINIT_INSTANCE_DATA: instanceData } });
    expect(missing).toMatchObject({ code: 1, stderr: "etcd-cloudinit: listen-address: no private IPv4 in cloud-init's instance data (cloud-init query ds.meta_data.local_ipv4) after 1 tries\n" });
  });

  /**
   * A real member started the way the unit starts it, in a network namespace whose loopback has
   * 127.77.0.5/16 (and its own /etc/hosts naming the member): listen-address.sh finds the address in
   * the range, etcd listens there, serves clients with certificates and metrics in plain HTTP.
   */
  it.skipIf(!canUnshare)('a member started with --listen-cidr listens on the address it found', async () => {
    const into = join(dir, 'member');
    const { member } = await generate(into, ['--listen-cidr', '127.77.0.0/16']);
    const root = join(into, 'node');
    for (const file of member.files.values()) {
      const target = join(root, file.path);
      mkdirSync(join(target, '..'), { recursive: true });
      writeFileSync(target, file.path.includes('.yaml') ? relocateNodePaths(file.content, root) : file.content, { mode: Number.parseInt(file.permissions ?? '0644', 8) });
    }
    mkdirSync(join(root, 'var/lib/etcd'), { recursive: true, mode: 0o700 });
    const dropIn = readFileSync(join(root, '/etc/systemd/system/etcd.service.d/listen-address.conf'), 'utf8');
    const pre = rewriteNodePaths(/^ExecStartPre=\+(.+)$/m.exec(dropIn)![1]!, root);
    const hosts = join(into, 'hosts');
    writeFileSync(hosts, '127.0.0.1 localhost\n127.77.0.5 etcd1.any.test\n');
    const pki = join(into, 'out', 'etcd', 'pki');
    const tlsArgs = `--cacert ${pki}/ca.crt --cert ${pki}/admin.crt --key ${pki}/admin.key`;
    const script = `
      set -eu
      ip link set lo up
      ip addr add 127.77.0.5/16 dev lo
      mount --bind ${hosts} /etc/hosts
      sh ${pre}
      ${ETCD_BIN} --config-file ${root}/etc/etcd/etcd.conf.yaml >${into}/etcd.log 2>&1 &
      pid=$!
      trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
      healthy=no
      for i in $(seq 1 120); do
        if curl -fsS --max-time 2 ${tlsArgs} https://etcd1.any.test:2379/health 2>/dev/null | grep -q '"health":"true"'; then healthy=yes; break; fi
        sleep 0.25
      done
      echo "healthy=$healthy"
      echo "listening=$(ss -ltnH | awk '{print $4}' | sort | tr '\\n' ' ')"
      curl -fsS --max-time 3 http://127.77.0.5:2381/metrics | grep '^etcd_server_has_leader ' || echo 'metrics=none'
      curl -sS --max-time 3 --cacert ${pki}/ca.crt https://etcd1.any.test:2379/version >/dev/null 2>&1 && echo anonymous=accepted || echo anonymous=refused
    `;
    const { stdout } = await execFileAsync('unshare', ['-n', '-m', 'sh', '-c', script], { timeout: 90_000 }).catch((error: { stdout?: string; stderr?: string }) => ({
      stdout: `${error.stdout ?? ''}\n${error.stderr ?? ''}\n${existsSync(join(into, 'etcd.log')) ? tailOf(join(into, 'etcd.log')) : ''}`,
    }));
    expect(stdout).toContain('etcd-cloudinit: listen-address: etcd listens on 127.77.0.5\n');
    expect(stdout, stdout).toContain('healthy=yes');
    const listening = /listening=(.*)/.exec(stdout)?.[1]?.trim().split(' ');
    expect(listening).toEqual(['127.0.0.1:2379', '127.77.0.5:2379', '127.77.0.5:2380', '127.77.0.5:2381']);
    expect(stdout).toContain('etcd_server_has_leader 1\n');
    expect(stdout).toContain('anonymous=refused');
  }, 120_000);
});
