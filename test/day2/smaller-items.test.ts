/**
 * The smaller items of issue 27, offline (no command here reaches a member: each refuses, or only
 * writes the folder, before it would): one exit code for "a roll is in progress", --etcd-sha256
 * refused with --install baked, no empty kit folders after a re-run, and a precise version message.
 * The folders use loopback addresses, so nothing could leave the host even if a command dialled.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { versionCheckShortfall } from '../../src/day2/version-check.js';
import { folderSnapshot, runCli, tempDirsRemovedAfterAll } from '../support/cli.js';

const workDir = tempDirsRemovedAfterAll('smaller');
const IPS = '127.0.0.1,127.0.0.2,127.0.0.3';
const SHA = 'a'.repeat(64);

/** A fresh folder out/etcd made by gen-userdata (ECDSA keys: quick to mint). */
async function folder(...extra: string[]): Promise<{ cwd: string; dir: string }> {
  const cwd = workDir();
  const made = await runCli(['gen-userdata', '--ips', IPS, '--key-type', 'ecdsa-p256', ...extra], cwd);
  expect(made.code, made.stderr).toBe(0);
  return { cwd, dir: join(cwd, 'out', 'etcd') };
}

/** roll.json with a roll or repair of etcd1 in progress. */
function pendingRoll(dir: string, operation: 'roll' | 'repair'): void {
  const state = {
    formatVersion: 1,
    current: {
      operation,
      startedAt: '2026-01-01T00:00:00.000Z',
      fromVersion: 'v3.6.16',
      target: { etcdVersion: 'v3.6.16', install: { mode: 'download', version: 'v3.6.16', releaseUrl: 'https://github.com/etcd-io/etcd/releases/download' }, keyType: 'ecdsa-p256', keySize: 4096 },
      steps: [{ old: 'etcd1', oldPeerUrl: 'https://127.0.0.1:2380', replacement: { name: 'etcd1-2', ip: '127.0.0.11' }, done: [] }],
    },
    history: [],
  };
  writeFileSync(join(dir, 'roll.json'), `${JSON.stringify(state, null, 2)}\n`);
}

describe('a roll or repair in progress: every command refuses with the same exit code, 1', () => {
  it('add-member, remove-member, renew-certs and repair during a roll; roll during a repair', async () => {
    const { cwd, dir } = await folder();
    const refusals: [string, readonly string[], 'roll' | 'repair'][] = [
      ['add-member', ['add-member', '--ip', '127.0.0.4', '--timeout', '1'], 'roll'],
      ['remove-member', ['remove-member', '--member', 'etcd3', '--yes', '--timeout', '1'], 'roll'],
      ['renew-certs', ['renew-certs'], 'roll'],
      ['repair', ['repair', '--member', 'etcd2', '--ip', '127.0.0.12', '--timeout', '1'], 'roll'],
      ['roll', ['roll', '--ips', '127.0.0.21,127.0.0.22,127.0.0.23', '--timeout', '1'], 'repair'],
    ];
    const seen: [string, number | null, string][] = [];
    for (const [command, args, operation] of refusals) {
      pendingRoll(dir, operation);
      const before = folderSnapshot(dir);
      const result = await runCli(args, cwd);
      seen.push([command, result.code, result.stderr.split('\n')[0]!]);
      expect(folderSnapshot(dir), command).toEqual(before);
    }
    expect(seen).toEqual(
      refusals.map(([command, , operation]) => [
        command,
        1,
        `etcd-cloudinit ${command}: [preflight] a ${operation} of cluster etcd is in progress (started 2026-01-01T00:00:00.000Z); run '${operation}' again to finish it before ${command}, or undo it with '${operation} --abort'`,
      ]),
    );
  });
});

describe('--etcd-sha256 with --install baked is refused, naming both flags; nothing is written', () => {
  const refusal = (command: string, where = '') =>
    `etcd-cloudinit ${command}: [validate] etcd-sha256: cannot be combined with --install baked${where}: a baked image already has etcd and nothing is downloaded to check; drop --etcd-sha256, or use --install download\n`;

  it('gen-userdata and create-droplets', async () => {
    const cwd = workDir();
    const generated = await runCli(['gen-userdata', '--ips', IPS, '--install', 'baked', '--etcd-sha256', SHA], cwd);
    expect(generated.code).toBe(2);
    expect(generated.stderr).toContain(refusal('gen-userdata'));
    const droplets = await runCli(['create-droplets', '--domain', 'loop.test', '--region', 'nyc3', '--image', '123', '--install', 'baked', '--etcd-sha256', SHA], cwd);
    expect(droplets.code).toBe(2);
    expect(droplets.stderr).toContain(refusal('create-droplets'));
    expect(existsSync(join(cwd, 'out'))).toBe(false);
  });

  it('roll --install baked --etcd-sha256, and roll --etcd-sha256 of a baked cluster', async () => {
    const download = await folder();
    const before = folderSnapshot(download.dir);
    const rolled = await runCli(['roll', '--install', 'baked', '--etcd-sha256', SHA, '--ips', '127.0.0.11,127.0.0.12,127.0.0.13', '--timeout', '1'], download.cwd);
    expect(rolled.code).toBe(2);
    expect(rolled.stderr).toContain(refusal('roll'));
    expect(folderSnapshot(download.dir)).toEqual(before);

    const baked = await folder('--install', 'baked');
    const pinned = await runCli(['roll', '--etcd-sha256', SHA, '--ips', '127.0.0.11,127.0.0.12,127.0.0.13', '--timeout', '1'], baked.cwd);
    expect(pinned.code).toBe(2);
    expect(pinned.stderr).toContain(refusal('roll', " (the cluster's install mode)"));
    expect(existsSync(join(baked.dir, 'roll.json'))).toBe(false);
  });
});

describe('a re-run of gen-userdata without --kubernetes or --client', () => {
  it('leaves no empty kubernetes/ or pki/clients/; a re-run that asks for them keeps them', async () => {
    const { cwd, dir } = await folder('--kubernetes', '--client', 'app');
    expect(existsSync(join(dir, 'kubernetes', 'ca.crt'))).toBe(true);
    expect(existsSync(join(dir, 'pki', 'clients', 'app.crt'))).toBe(true);

    const clientOnly = await runCli(['gen-userdata', '--ips', IPS, '--key-type', 'ecdsa-p256', '--client', 'app'], cwd);
    expect(clientOnly.code, clientOnly.stderr).toBe(0);
    expect(existsSync(join(dir, 'kubernetes'))).toBe(false);
    expect(existsSync(join(dir, 'pki', 'clients', 'app.crt'))).toBe(true);

    const neither = await runCli(['gen-userdata', '--ips', IPS, '--key-type', 'ecdsa-p256'], cwd);
    expect(neither.code, neither.stderr).toBe(0);
    expect(existsSync(join(dir, 'kubernetes'))).toBe(false);
    expect(existsSync(join(dir, 'pki', 'clients'))).toBe(false);
    expect(existsSync(join(dir, 'pki', 'ca.crt'))).toBe(true);
  });
});

describe("the roll's version message says which condition failed", () => {
  const versions = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it.each([
    // Issue 27: a --member roll to another patch release; the cluster version is already 3.4.0.
    [
      'v3.4.30',
      '3.4.0',
      { etcd1: '3.4.23', 'etcd2-2': '3.4.30', etcd3: '3.4.23' },
      'etcd1, etcd3 did not report etcd 3.4.30 (members: etcd1 3.4.23, etcd2-2 3.4.30, etcd3 3.4.23; cluster version 3.4.0)',
    ],
    [
      'v3.5.30',
      '3.4.0',
      { 'etcd1-2': '3.5.30', 'etcd2-2': '3.5.30', 'etcd3-2': '3.5.30' },
      'the cluster version is 3.4.0, not yet 3.5 (members: etcd1-2 3.5.30, etcd2-2 3.5.30, etcd3-2 3.5.30; cluster version 3.4.0)',
    ],
    [
      'v3.5.30',
      'unknown',
      { 'etcd1-2': 'no answer (ECONNREFUSED)', 'etcd2-2': 'no answer (ECONNREFUSED)' },
      'no member reported etcd 3.5.30, and the cluster version is unknown, not yet 3.5 (members: etcd1-2 no answer (ECONNREFUSED), etcd2-2 no answer (ECONNREFUSED); cluster version unknown)',
    ],
  ])('target %s, cluster %s', (target, cluster, members, message) => {
    expect(versionCheckShortfall(target, cluster, versions(members))).toBe(message);
  });
});
