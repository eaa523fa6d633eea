import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli.js';
import { ClusterFolder } from '../../src/cluster-folder.js';
import { openCluster } from '../../src/day2/open-cluster.js';
import { resolveClusterInput } from '../../src/input.js';
import { NODE_PATHS, planCluster } from '../../src/plan.js';
import type { CloudConfig } from '../../src/render.js';
import { DEFAULT_ETCD_VERSION, DEFAULT_RELEASE_URL } from '../../src/versions.js';
import { renderUserData } from '../../src/render.js';
import { mintPki } from '../../src/pki/mint.js';
import { runProgram } from '../support/run.js';

const IPS = '10.10.0.11,10.10.0.12,10.10.0.13';

function capture() {
  let text = '';
  return { write: (chunk: string) => (text += chunk), text: () => text };
}

async function runCli(argv: string[], cwd: string) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(argv, { env: {}, stdout, stderr, cwd, now: () => new Date('2026-11-01T00:00:00Z') });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('install mode: input and plan', () => {
  it('defaults to download', () => {
    const { input } = resolveClusterInput({}, { ips: ['10.0.0.1'] });
    expect(input.install).toBe('download');
    expect(planCluster(input, '/tmp').install).toMatchObject({ mode: 'download', releaseUrl: DEFAULT_RELEASE_URL });
  });

  it('baked plans a version check only: no release URL, no checksum', () => {
    const { input, warnings } = resolveClusterInput({ install: 'baked' }, { ips: ['10.0.0.1'], 'etcd-version': 'v3.5.21' });
    expect(warnings).toEqual([]);
    expect(planCluster(input, '/tmp').install).toEqual({ mode: 'baked', version: 'v3.5.21' });
  });

  it.each([
    [{ install: 'sideways' }, '[validate] install: "sideways" is not an install mode (download or baked)'],
    [{ install: 'Baked' }, '[validate] install: "Baked" is not an install mode (download or baked)'],
  ])('rejects %j', (raw, message) => {
    expect(() => resolveClusterInput(raw, { ips: ['10.0.0.1'] })).toThrow(message);
  });

  it('warns that the release URL is ignored when baked', () => {
    const { warnings } = resolveClusterInput({}, { ips: ['10.0.0.1'], install: 'baked', 'release-url': 'http://mirror.internal/etcd' });
    expect(warnings).toEqual(['release-url: ignored with install: baked (the release was fetched and verified when the image was baked)']);
  });

  it.each([
    [{}, { install: 'baked', 'etcd-sha256': 'a'.repeat(64) }, {}, ''],
    [{ install: 'baked' }, { 'etcd-sha256': 'a'.repeat(64) }, {}, ''],
    [{}, { 'etcd-sha256': 'a'.repeat(64) }, { install: 'baked' as const }, ' (as cluster.json recorded)'],
  ])('refuses a pinned checksum with install: baked (config %j, flags %j, recorded %j): it would check nothing', (fileInput, flagInput, recorded, where) => {
    expect(() => resolveClusterInput(fileInput, { ips: ['10.0.0.1'], ...flagInput }, recorded)).toThrow(
      `[validate] etcd-sha256: cannot be combined with --install baked${where}: a baked image already has etcd and nothing is downloaded to check; drop --etcd-sha256, or use --install download`,
    );
  });
});

describe('gen-userdata --install baked', () => {
  let cwd: string;
  let result: Awaited<ReturnType<typeof runCli>>;
  let userDataText: string;
  let userData: CloudConfig;
  let downloadUserData: CloudConfig;

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'baked-userdata-'));
    result = await runCli(['gen-userdata', '--ips', IPS, '--install', 'baked', '--key-size', '2048'], cwd);
    userDataText = await readFile(join(cwd, 'out/etcd/user-data/etcd1.yaml'), 'utf8');
    userData = parseYaml(userDataText) as CloudConfig;
    // The same cluster in download mode, to compare against.
    const download = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048', '--out', 'download'], cwd);
    expect(download.code, download.stderr).toBe(0);
    downloadUserData = parseYaml(await readFile(join(cwd, 'download/etcd/user-data/etcd1.yaml'), 'utf8')) as CloudConfig;
  });

  afterAll(async () => {
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it('says so in the summary and in cluster.json', async () => {
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Cluster etcd: 3 member(s), etcd ${DEFAULT_ETCD_VERSION} baked into the image (version checked at boot)\n`);
    expect(result.stdout).toContain(`boot them from an image baked with etcd ${DEFAULT_ETCD_VERSION} (packer/, see docs/packer.md)`);
    const clusterJson = JSON.parse(await readFile(join(cwd, 'out/etcd/cluster.json'), 'utf8')) as { install: unknown };
    expect(clusterJson.install).toEqual({ mode: 'baked', version: DEFAULT_ETCD_VERSION });
  });

  it('is a valid cloud-config for cloud-init itself', async () => {
    const schema = await runProgram('cloud-init', ['schema', '--config-file', join(cwd, 'out/etcd/user-data/etcd1.yaml')]);
    expect(schema.stderr).toBe('');
    expect(schema).toMatchObject({ code: 0, stdout: expect.stringContaining('Valid cloud-config') });
  });

  it('downloads nothing: no install command, no release URL', () => {
    expect(userDataText).not.toContain(DEFAULT_RELEASE_URL);
    expect(JSON.stringify(userData.runcmd)).not.toMatch(/install-etcd\.sh install|curl/);
    expect(userDataText).toContain(`etcd ${DEFAULT_ETCD_VERSION} baked into the image`);
  });

  it("checks the baked version under set -eu before enabling etcd; the rest of runcmd is download mode's", () => {
    const lines = (runcmd: CloudConfig['runcmd']) => {
      expect(runcmd).toHaveLength(1);
      const [shell, flag, script] = runcmd[0] as string[];
      expect([shell, flag]).toEqual(['sh', '-c']);
      return script!.split('\n');
    };
    const baked = lines(userData.runcmd);
    const download = lines(downloadUserData.runcmd);
    expect(baked.slice(0, 2)).toEqual(['set -eu', `${NODE_PATHS.installScript} check --version ${DEFAULT_ETCD_VERSION} --bin-dir ${NODE_PATHS.binDir}`]);
    expect(download[1]).toMatch(/install-etcd\.sh install --version /);
    expect(baked.slice(2)).toEqual(download.slice(2));
    // Type=notify blocks until quorum: a blocking start would hang cloud-init on the first member.
    expect(baked).toContain('systemctl start --no-block etcd.service');
    expect(baked.indexOf('systemctl enable --no-reload etcd.service')).toBeGreaterThan(1);
  });

  it('still writes the check script, unit, config, certificates and key: every file download mode writes', async () => {
    const files = (config: CloudConfig) => config.write_files.map((file) => [file.path, file.owner, file.permissions]);
    expect(files(userData)).toEqual(files(downloadUserData));
    expect(files(userData)).toEqual(
      expect.arrayContaining([
        [NODE_PATHS.installScript, 'root:root', '0755'],
        [NODE_PATHS.unitFile, 'root:root', '0644'],
        [NODE_PATHS.configFile, 'root:root', '0644'],
        [NODE_PATHS.caCert, 'root:root', '0644'],
        [NODE_PATHS.memberCert, 'root:root', '0644'],
        [NODE_PATHS.memberKey, 'etcd:etcd', '0600'],
      ]),
    );
    const script = userData.write_files[0]!.content;
    expect(script).toBe(await readFile(new URL('../../cloud-init/install-etcd.sh', import.meta.url), 'utf8'));
  });

  it('runs the same check the image bake is verified with: a wrong baked version stops the boot script', async () => {
    // The runcmd, pointed at a scratch bin dir holding a fake etcd of another version.
    const binDir = await mkdtemp(join(cwd, 'bin-'));
    await writeFile(join(binDir, 'etcd'), '#!/bin/sh\necho "etcd Version: 3.4.23"\n', { mode: 0o755 });
    const scriptPath = join(cwd, 'install-etcd.sh');
    await writeFile(scriptPath, userData.write_files[0]!.content, { mode: 0o755 });
    const runcmd = (userData.runcmd[0] as string[])[2]!
      .replaceAll(NODE_PATHS.installScript, scriptPath)
      .replaceAll(`--bin-dir ${NODE_PATHS.binDir}`, `--bin-dir ${binDir}`)
      .replaceAll('systemctl', 'echo must-not-run systemctl');
    const boot = await runProgram('sh', ['-c', runcmd]);
    expect(boot).toEqual({
      code: 1,
      stdout: '',
      stderr: `etcd-cloudinit: install-etcd: expected etcd ${DEFAULT_ETCD_VERSION} in ${binDir}, found v3.4.23\n`,
    });
  });
});

describe('gen-userdata --help', () => {
  it('documents --install', async () => {
    const help = await runCli(['gen-userdata', '--help'], tmpdir());
    expect(help.stdout).toMatch(/--install <mode> +How nodes get etcd: download \(fetch and verify the release at first boot\) or baked \(the image has it.*\(default download\)$/m);
  });

  it('rejects an unknown mode on the command line with the field and value', async () => {
    const bad = await runCli(['gen-userdata', '--ips', IPS, '--install', 'preloaded'], tmpdir());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('etcd-cloudinit gen-userdata: [validate] install: "preloaded" is not an install mode (download or baked)\n');
  });
});

describe('day-2 commands keep the install mode of cluster.json', () => {
  let cwd: string;
  const open = () => openCluster(new ClusterFolder('out', 'etcd', cwd));

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'baked-day2-'));
    const result = await runCli(['gen-userdata', '--ips', IPS, '--install', 'baked', '--key-size', '2048'], cwd);
    expect(result.code, result.stderr).toBe(0);
  });

  afterAll(async () => {
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it('plans a member added to a baked cluster as baked: it boots from the same image', async () => {
    const folder = open();
    expect(folder.plan.install).toEqual({ mode: 'baked', version: DEFAULT_ETCD_VERSION });
    const pki = await mintPki(folder.plan, { now: new Date(), existing: folder.pki });
    const userData = renderUserData(folder.plan, pki, 'etcd2');
    expect(userData).toContain(`install-etcd.sh check --version ${DEFAULT_ETCD_VERSION}`);
  });

  it('reads a cluster.json written before install modes existed as download', async () => {
    const file = join(cwd, 'out/etcd/cluster.json');
    const record = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...record, install: { version: DEFAULT_ETCD_VERSION, releaseUrl: 'http://mirror.internal/etcd', sha256: undefined } }));
    expect(open().plan.install).toMatchObject({ mode: 'download', releaseUrl: 'http://mirror.internal/etcd' });
  });
});
