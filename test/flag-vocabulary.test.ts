/**
 * One flag vocabulary: `--member` chooses a member on every command (remove-member and repair keep
 * `--name` as an alias), and printed paths are the ones the user gave. The folder's members are
 * 127.0.99.x addresses where nothing listens: the dry runs below never reach a cluster.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, renderCommandHelp } from '../src/cli.js';
import { folderSnapshot, runCli, tempDirsRemovedAfterAll } from './support/cli.js';

const newDir = tempDirsRemovedAfterAll('flags');
const IPS = '127.0.99.1,127.0.99.2,127.0.99.3';

describe('--member chooses a member; --name is its alias on remove-member and repair', () => {
  let dir: string;
  beforeAll(async () => {
    dir = newDir();
    const generated = await runCli(['gen-userdata', '--ips', IPS, '--key-type', 'ecdsa-p256'], dir);
    expect(generated.code, generated.stderr).toBe(0);
  });

  it.each(['--member', '--name'])('%s: the same errors and the same dry-run plans', async (flag) => {
    const before = folderSnapshot(join(dir, 'out'));
    const cases: [string[], number, string][] = [
      [['remove-member', flag, 'etcd9', '--yes'], 2, 'etcd-cloudinit remove-member: [validate] member: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
      [['repair', flag, 'etcd9', '--ip', '127.0.99.12'], 2, 'etcd-cloudinit repair: [validate] member: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
      [['remove-member', flag, 'etcd3', '--dry-run'], 0, 'Dry run: would remove member etcd3 from cluster etcd; nothing was changed or written.'],
      [['repair', flag, 'etcd2', '--ip', '127.0.99.12', '--dry-run'], 0, '  etcd2 -> etcd2-2 (127.0.99.12): remove-old -> retire-old -> add -> promote'],
    ];
    for (const [args, code, line] of cases) {
      const run = await runCli([...args, '--timeout', '1'], dir);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(code);
      expect((code === 0 ? run.stdout : run.stderr).split('\n'), args.join(' ')).toContain(line);
    }
    expect(folderSnapshot(join(dir, 'out'))).toEqual(before);
  });

  it.each([
    [['remove-member', '--member', 'etcd2', '--name', 'etcd3', '--dry-run'], '[parse] member: --member "etcd2" and its alias --name "etcd3" disagree; give one'],
    [['repair', '--name', 'etcd2', '--member', 'etcd3', '--dry-run'], '[parse] member: --member "etcd3" and its alias --name "etcd2" disagree; give one'],
  ])('%j: the two names disagreeing is a usage error', async (args, message) => {
    const run = await runCli(args, dir);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toContain(message);
  });

  it('--help shows --name as an alias of --member, and never as an option of its own', () => {
    for (const name of ['remove-member', 'repair']) {
      const help = renderCommandHelp(COMMANDS.find((command) => command.name === name)!);
      expect(help).toMatch(/\n {6}--member <name> +The .*\(alias: --name\)\n/);
      expect(help).not.toMatch(/\n {6}--name /);
    }
  });
});

describe('restore --dry-run', () => {
  it('is for --region (a restore without it makes no API call): a usage error, nothing written', async () => {
    const dir = newDir();
    const run = await runCli(['restore', '--backup-url', 's3://acme-etcd/prod/', '--backup-region', 'fra1', '--ips', IPS, '--dry-run'], dir);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toBe('etcd-cloudinit restore: [validate] dry-run: only with --region (a restore without it makes no API call: it writes the folder, which you can delete)');
    expect(folderSnapshot(dir)).toEqual({});
  });
});

describe('printed paths are the ones the user gave', () => {
  it.each([
    ['a relative --out', () => 'clusters', (_dir: string) => 'clusters/etcd'],
    ['an absolute --out', (dir: string) => join(dir, 'abs'), (dir: string) => join(dir, 'abs', 'etcd')],
    ['a relative --out outside the working directory', () => '../outside', () => '../outside/etcd'],
  ])('%s', async (_case, out, shown) => {
    const dir = join(newDir(), 'work');
    mkdirSync(dir);
    const run = await runCli(['gen-userdata', '--ips', IPS, '--out', out(dir), '--key-type', 'ecdsa-p256'], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Wrote ${shown(dir)}/\n`);
    expect(run.stdout).toContain(`  etcd-cloudinit health --out ${out(dir)}\n`);
    const json = await runCli(['gen-userdata', '--ips', IPS, '--out', out(dir), '--key-type', 'ecdsa-p256', '--json'], dir);
    expect(JSON.parse(json.stdout)).toMatchObject({ folder: shown(dir), etcdctlEnv: `${shown(dir)}/etcdctl.env` });
    // Day 2 too: a dry run names the files as the user named the folder.
    const removed = await runCli(['remove-member', '--member', 'etcd3', '--out', out(dir), '--dry-run', '--timeout', '1'], dir);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stderr).toContain(`[dry-run] write ${shown(dir)}/cluster.json, ${shown(dir)}/etcdctl.env`);
  });
});
