import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../src/cli.js';
import type { KeySource } from '../src/pki/mint.js';
import { NODE_PATHS } from '../src/plan.js';
import { shellWord } from '../src/templates.js';
import { DEFAULT_RELEASE_URL } from '../src/versions.js';
import { tempDirsRemovedAfterAll } from './support/cli.js';
import { counterSerials, FIXED_NOW, FIXTURES } from './support/golden.js';

/**
 * Every free-text input, with values a hostile or careless user might give: each run of
 * gen-userdata either refuses the value (exit 2, a [validate]/[parse] line, nothing written) or
 * writes files whose consumers read back exactly that value: YAML 1.1 (cloud-init's PyYAML) for the
 * user-data and etcd's config, `sh` for etcdctl.env, the runcmd script and the printed "Next:"
 * health command, systemd for the snapshot timer.
 */

/** The fixture keys whatever the member is called: these runs check text, not certificates. */
const anyNameKeySource: KeySource = async (_key, fileBase) =>
  readFileSync(join(FIXTURES, 'keys', `${['ca', 'admin'].includes(fileBase) ? fileBase : 'etcd1'}.key`), 'utf8');

/** What YAML 1.1 (PyYAML) reads as a line break or refuses, and what a terminal or shell acts on. */
const BREAKS_AND_CONTROLS = ['\n', '\r', '\t', '\0', '\u001b', '\u007f', '\u0085', '\u009b', '\u2028', '\u2029', '\ufeff'];
/** Shell and YAML syntax, and characters beyond ASCII. */
const SYNTAX = ["'", '"', '`', '$', '\\', ' ', '#', ':', ': ', ' #', '-', '?', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', ';', '~', '..', '/', '\u00a0', '\u00e9', '\u{1f600}'];
const hostileChar = fc.oneof({ arbitrary: fc.constantFrom(...BREAKS_AND_CONTROLS), weight: 1 }, { arbitrary: fc.constantFrom(...SYNTAX), weight: 1 });

/** A value near `valid` (sometimes `valid` itself), with hostile characters put in. */
function nearby(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const withHostile = fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), hostileChar), { minLength: 1, maxLength: 2 }))
    .map(([value, inserts]) => inserts.reduce((text, [at, char]) => text.slice(0, at % (text.length + 1)) + char + text.slice(at % (text.length + 1)), value));
  return fc.oneof({ arbitrary: valid, weight: 1 }, { arbitrary: withHostile, weight: 2 }, { arbitrary: fc.string({ unit: 'binary', maxLength: 24 }), weight: 1 });
}

const label = fc.stringMatching(/^[a-z]([a-z0-9-]{0,8}[a-z0-9])?$/);
const dnsName = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), label).map(([labels, top]) => [...labels, top].join('.'));

/** Each free-text input: its key in cluster.yaml, generated values, and the rest of a valid config around it. */
const FIELDS = {
  out: { values: nearby(fc.constantFrom('out', 'clusters/prod', 'with space', "it's", '$HOME', 'a;b', 'x y/z', '-dash', '/abs')), base: { ips: ['10.0.0.1'] } },
  'cluster-name': { values: nearby(fc.stringMatching(/^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$/)), base: { ips: ['10.0.0.1'] } },
  names: { values: nearby(label), base: { ips: ['10.0.0.1'] }, list: true },
  hostnames: { values: nearby(dnsName), base: {}, list: true },
  domain: { values: nearby(dnsName), base: { names: ['etcd1'] } },
  'release-url': {
    values: nearby(fc.oneof(fc.constant(DEFAULT_RELEASE_URL), fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.constantFrom('http://mirror.internal:8080/etcd/', 'https://[fd00::1]:8443/r'))),
    base: { ips: ['10.0.0.1'] },
  },
  'snapshot-schedule': {
    values: nearby(fc.oneof(fc.constantFrom('hourly', 'daily', '*:0/15', 'Mon..Fri 02:00', 'Sat *-*-1..7 03:00 UTC', '*-*~01', '*-*-* 00/6:00:00'), fc.stringMatching(/^[A-Za-z0-9*:/,.~ -]{1,12}$/))),
    base: { ips: ['10.0.0.1'] },
  },
  'etcd-version': { values: nearby(fc.stringMatching(/^v3\.[4-7]\.(0|[1-9][0-9]{0,2})$/)), base: { ips: ['10.0.0.1'] } },
  'etcd-sha256': { values: nearby(fc.stringMatching(/^[0-9a-f]{64}$/)), base: { ips: ['10.0.0.1'] } },
} satisfies Record<string, { values: fc.Arbitrary<string>; base: Record<string, unknown>; list?: boolean }>;

/** What cloud-init's YAML reader (PyYAML) refuses, or reads as a line break where the `yaml` package does not. */
const PYYAML_TROUBLE = /[^\t\n\r\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]|[\u0085\u2028\u2029]/u;

/** Runs `sh` on a script; the words it prints, NUL-separated. */
function shell(script: string, args: readonly string[] = [], cwd?: string): { code: number | null; words: string[]; stderr: string } {
  const run = spawnSync('sh', ['-c', script, 'sh', ...args], { encoding: 'utf8', cwd, timeout: 10_000 });
  return { code: run.status, words: run.stdout.split('\0').slice(0, -1), stderr: run.stderr };
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('every free-text input: refused at [validate], or read back unchanged by each file\'s consumer', () => {
  const workDir = tempDirsRemovedAfterAll('properties');

  it.each(Object.entries(FIELDS))('%s', async (key, field) => {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(field.values, async (generated) => {
        const cwd = workDir();
        const configDir = workDir();
        // Never write outside the run's folder: absolute paths are moved into it, `..` cannot climb out.
        const value = key === 'out' ? (generated.startsWith('/') ? `${cwd}${generated}` : generated).replaceAll('..', '._') : generated;
        const config = { ...field.base, [key]: 'list' in field ? [value] : value, 'key-size': 2048 };
        // JSON is YAML; escaped to ASCII so the config file itself carries no raw control or line-break character.
        const configText = JSON.stringify(config).replace(/[^\u0020-\u007e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
        writeFileSync(join(configDir, 'cluster.yaml'), configText);
        const stdout: string[] = [];
        const stderr: string[] = [];
        const code = await main(
          ['gen-userdata', '--config', join(configDir, 'cluster.yaml')],
          { env: {}, stdout: { write: (text: string) => stdout.push(text) }, stderr: { write: (text: string) => stderr.push(text) }, cwd, now: () => FIXED_NOW },
          { keySource: anyNameKeySource, serialSource: counterSerials() },
        );
        if (code !== 0) {
          refused++;
          expect({ code, stderr: stderr.join('') }).toEqual({ code: 2, stderr: expect.stringMatching(/^etcd-cloudinit gen-userdata: \[(validate|parse)\] /) });
          expect(readdirSync(cwd), 'nothing written').toEqual([]);
          return;
        }
        accepted++;
        checkOutput(key, value, cwd, stdout.join(''));
      }),
      { numRuns: 40, seed: 15, endOnFailure: true },
    );
    // Both outcomes happen, or the generators test nothing.
    expect([accepted > 0, refused > 0]).toEqual([true, true]);
  }, 60_000);
});

describe('shellWord: sh reads back exactly the value', () => {
  it('for every character but NUL, alone and between others', () => {
    const chars = [...Array.from({ length: 255 }, (_v, code) => String.fromCharCode(code + 1)), '\u2028', '\u2029', '\ufeff', '\u{1f600}'];
    const values = [...chars, ...chars.map((char) => `a${char}b`), '', "''", "'\\''", '-n', '~', '~root', 'a=b', '$(reboot)', '`reboot`', '\\\n'];
    expect(shell(`printf '%s\\0' ${values.map(shellWord).join(' ')}`).words).toEqual(values);
  });

  it('for generated strings', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 16 }).filter((value) => !value.includes('\0')), { minLength: 1, maxLength: 8 }), (values) => {
        expect(shell(`printf '%s\\0' ${values.map(shellWord).join(' ')}`).words).toEqual(values);
      }),
      { numRuns: 200, seed: 15 },
    );
  });
});

interface CloudConfig {
  write_files: { path: string; content: string }[];
  runcmd: string[][];
  final_message: string;
}

/** Reads every file the run wrote back as its consumer would, and finds `value` unchanged there. */
function checkOutput(key: string, value: string, cwd: string, summary: string): void {
  const out = key === 'out' ? value : 'out';
  const clusterName = key === 'cluster-name' ? value : 'etcd';
  const clusterDir = resolve(cwd, out, clusterName);
  const record = JSON.parse(readFileSync(join(clusterDir, 'cluster.json'), 'utf8')) as { members: { name: string; hostname?: string; ip?: string }[] };
  const member = record.members[0]!;
  if (key === 'names') expect(member.name).toBe(value);
  if (key === 'hostnames') expect(member.hostname).toBe(value);
  if (key === 'domain') expect(member.hostname).toBe(`etcd-etcd1.${value}`);

  const userData = readFileSync(join(clusterDir, 'user-data', `${member.name}.yaml`), 'utf8');
  expect(PYYAML_TROUBLE.exec(userData)?.[0], 'a character PyYAML refuses or reads as a line break').toBeUndefined();
  const cloudConfig = parseYaml(userData, { version: '1.1' }) as CloudConfig;
  const file = (path: string) => cloudConfig.write_files.find((entry) => entry.path === path)?.content;
  expect(cloudConfig.final_message).toContain(`on member ${member.name} of cluster ${clusterName} after`);

  // etcd's config, as YAML 1.1 too.
  const etcdConfig = parseYaml(file(NODE_PATHS.configFile) ?? file(NODE_PATHS.configTemplate)!, { version: '1.1' }) as Record<string, string>;
  expect(etcdConfig.name).toBe(member.name);
  const host = member.hostname ?? member.ip!;
  expect(etcdConfig['initial-cluster']).toBe(`${member.name}=https://${host}:2380`);
  expect(etcdConfig['advertise-client-urls']).toBe(`https://${host}:2379`);

  // The runcmd script parses, and its install command hands the script exactly the planned words.
  const script = cloudConfig.runcmd[0]!.at(-1)!;
  expect(spawnSync('sh', ['-n', '-c', script]).status, 'sh -n of runcmd').toBe(0);
  const installLine = script.split('\n').find((line) => line.startsWith(NODE_PATHS.installScript))!;
  const words = shell(`set -- ${installLine}; printf '%s\\0' "$@"`).words;
  const wordAfter = (flag: string) => words[words.indexOf(flag) + 1];
  if (key === 'release-url') expect(wordAfter('--release-url')).toBe(value.replace(/\/+$/, ''));
  if (key === 'etcd-version') expect(wordAfter('--version')).toBe(value);
  if (key === 'etcd-sha256') expect(wordAfter('--sha256')).toBe(value);

  // The snapshot timer carries the schedule, and systemd accepts the unit.
  const timer = file(NODE_PATHS.snapshotTimer)!;
  if (key === 'snapshot-schedule') expect(timer).toContain(`\nOnCalendar=${value}\n`);
  if (hasSystemdAnalyze) {
    const unitDir = join(cwd, 'units');
    mkdirSync(unitDir);
    writeFileSync(join(unitDir, 'snap.timer'), timer);
    writeFileSync(join(unitDir, 'snap.service'), '[Service]\nType=oneshot\nExecStart=/bin/true\n');
    const verify = spawnSync('systemd-analyze', ['verify', join(unitDir, 'snap.timer')], { encoding: 'utf8', timeout: 20_000 });
    expect({ code: verify.status, stderr: verify.stderr }).toEqual({ code: 0, stderr: '' });
  }

  // etcdctl.env: sourcing it sets the paths of this folder and does nothing else.
  const envFile = join(clusterDir, 'etcdctl.env');
  expect(spawnSync('sh', ['-n', envFile]).status, 'sh -n etcdctl.env').toBe(0);
  const sourced = shell('. "$1" && printf \'%s\\0\' "$ETCDCTL_CACERT" "$ETCDCTL_CERT" "$ETCDCTL_KEY"', [envFile], cwd);
  expect(sourced).toEqual({ code: 0, words: ['ca.crt', 'admin.crt', 'admin.key'].map((name) => join(clusterDir, 'pki', name)), stderr: '' });

  // The printed "Next:" health command, read by sh, finds the same folder from the same directory
  // (health's defaults are --cluster-name etcd and --out out). Only its words are checked: running it would dial the members.
  const next = /^ {2}(etcd-cloudinit health(?: .+)?)$/m.exec(summary)?.[1];
  expect(next, summary).toBeDefined();
  const [command, subcommand, ...flags] = shell(`printf '%s\\0' ${next}`, [], cwd).words;
  expect([command, subcommand]).toEqual(['etcd-cloudinit', 'health']);
  const flag = (name: string) => (flags.includes(name) ? flags[flags.indexOf(name) + 1] : undefined);
  expect(flags.length).toBe((flag('--cluster-name') === undefined ? 0 : 2) + (flag('--out') === undefined ? 0 : 2));
  expect(resolve(cwd, flag('--out') ?? 'out', flag('--cluster-name') ?? 'etcd')).toBe(clusterDir);
}
