/**
 * The README's Quick start, run as a reader runs it: every fenced block under "## Quick start",
 * in order, each through /bin/sh (`set -e`) in a fresh workspace, with the built CLI of this
 * checkout as `npx etcd-cloudinit`. Between "make the members" and "check it" the test does what
 * the reader does by hand: it boots the members, here as real etcd on loopback started from the
 * user-data gen-userdata wrote. create-droplets runs against the fake DigitalOcean API.
 *
 * Addresses: the README shows realistic private addresses (10.10.0.x), and tests may only send
 * traffic to 127.0.0.0/8. Rather than give the README a loopback example nobody would copy, or
 * flags only a test needs, each command is run with 10.10.0.N rewritten to 127.a.b.N, one random
 * loopback /24 per run (as the day-2 harness picks them). That is the only change made to a
 * command, and a command that still names any address outside 127.0.0.0/8 afterwards is refused,
 * not run. On the DigitalOcean path the members are named by DNS and get the fake's private
 * addresses, so `health` is not run there; the IP path runs it against the booted members.
 *
 * Every `npx etcd-cloudinit ...` of the section, in code blocks and in the day-2 table, must name a
 * command and options the CLI has. Of the day-2 table, the lines that need nothing a test cannot
 * give here run too, as written, after the blocks: renew-certs and add-member on the booted
 * members, destroy-droplets on the fake API. The others need a new machine to boot (roll, repair),
 * a bucket (backups, restore) or a terminal to answer on (remove-member asks first); their own
 * tests cover them (test/day2/, test/backup-restore.test.ts).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli.js';
import { CLI, REPO_ROOT, tempDirsRemovedAfterAll, type CliRun } from './support/cli.js';
import { ETCD_BIN, ETCDCTL_BIN, adminTls, etcdctl, loopbackBlock, startLocalCluster, type LocalCluster } from './support/local-cluster.js';
import { startRenewAgents } from './support/renew-agents.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './digitalocean/fake-api.js';

const canBootMembers = process.getuid?.() === 0 && existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);
const newDir = tempDirsRemovedAfterAll('quickstart');

/** The README's example network: the addresses a reader replaces with theirs. */
const EXAMPLE_ADDRESS = /\b10\.10\.0\.(\d{1,3})\b/g;
const IPV4 = /\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g;
/** What `npm ci` does in a checkout (install, then `prepare` builds dist/): this run already stands on a built checkout. */
const INSTALL_COMMAND = 'npm ci';

interface Block {
  /** The heading the block is under, for messages. */
  readonly heading: string;
  readonly script: string;
}

/** The Quick start section of a README: from its `## Quick start` heading to the next `## ` heading. */
function quickStartSection(readme: string): string {
  const start = readme.search(/^## Quick start\b/m);
  if (start < 0) throw new Error('README.md has no "## Quick start" heading');
  const rest = readme.slice(start);
  const end = rest.slice(3).search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end + 3);
}

/** The day-2 table's command for `command` (inline code), as written. */
function tableCommand(section: string, command: string): string {
  const line = [...section.matchAll(/^\| `(npx etcd-cloudinit [^`]+)`/gm)].map((match) => match[1]!).find((candidate) => candidate.split(' ')[2] === command);
  if (line === undefined) throw new Error(`the Quick start's day-2 table has no ${command} line`);
  return line;
}

/** Its fenced code blocks, in order, with the heading each is under. */
function codeBlocks(section: string): Block[] {
  const blocks: Block[] = [];
  let heading = '';
  let fence: string[] | undefined;
  for (const line of section.split('\n')) {
    if (fence) {
      if (line.startsWith('```')) {
        blocks.push({ heading, script: fence.join('\n') });
        fence = undefined;
      } else fence.push(line);
    } else if (line.startsWith('```')) fence = [];
    else if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
  }
  if (fence) throw new Error(`an unclosed code block under "${heading}"`);
  return blocks;
}

/** Every `npx etcd-cloudinit ...` command line of the section: code block lines (continuations joined) and inline code. */
function cliCommands(section: string): string[] {
  const lines = codeBlocks(section).flatMap((block) => block.script.replace(/\\\n\s*/g, ' ').split('\n'));
  const inline = [...section.matchAll(/`(npx etcd-cloudinit [^`]+)`/g)].map((match) => match[1]!);
  return [...lines, ...inline].map((line) => line.trim()).filter((line) => line.startsWith('npx etcd-cloudinit'));
}

/** Why the command is not one the CLI takes (an unknown command or option), or undefined. */
function unknownToCli(commandLine: string): string | undefined {
  const words = commandLine.split(/\s+/);
  const end = words.findIndex((word) => ['#', '|', '>', '&&', ';', '||'].includes(word));
  const [, , name, ...args] = end < 0 ? words : words.slice(0, end);
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) return `${commandLine}: no command ${JSON.stringify(name)}`;
  for (const word of args) {
    const option = /^--([^=]+)/.exec(word)?.[1] ?? /^-([A-Za-z])$/.exec(word)?.[1];
    if (option === undefined) continue;
    if (!command.options.some((spec) => spec.name === option || spec.short === option)) return `${commandLine}: ${name} has no option ${word}`;
  }
  return undefined;
}

/** The command with the README's example addresses moved to the loopback block `prefix` (127.a.b); refuses any other address. */
function onLoopback(script: string, prefix: string): string {
  const mapped = script.replace(EXAMPLE_ADDRESS, (_all, host: string) => `${prefix}.${host}`);
  const outside = (mapped.match(IPV4) ?? []).filter((address) => !address.startsWith('127.'));
  if (outside.length > 0) throw new Error(`refusing to run a Quick start command that names ${outside.join(', ')} (only 127.0.0.0/8 may be dialled):\n${script}`);
  return mapped;
}

/** A bin folder whose `npx` runs only this checkout's built CLI, as `npx etcd-cloudinit` does in a checkout. */
function npxStandIn(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const npx = join(bin, 'npx');
  writeFileSync(
    npx,
    [
      '#!/bin/sh',
      `[ "$1" = etcd-cloudinit ] || { echo "npx stand-in: only etcd-cloudinit runs here, not $1" >&2; exit 127; }`,
      'shift',
      `exec '${process.execPath}' '${CLI}' "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(npx, 0o755);
  return bin;
}

/** Runs one block with `sh -e` in the workspace; only the environment given (and PATH with the stand-in first). */
function runBlock(script: string, cwd: string, env: Record<string, string>, timeoutMs = 240_000): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-e', '-c', script], { cwd, env: { HOME: cwd, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const section = quickStartSection(readme);
const blocks = codeBlocks(section);
const isInstall = (block: Block) => block.script.trim() === INSTALL_COMMAND;
const isDigitalOcean = (block: Block) => /\bnpx etcd-cloudinit (create|destroy)-droplets\b/.test(block.script);
const systemPath = process.env.PATH ?? '/usr/bin:/bin';

describe('the README Quick start', () => {
  it('has code blocks: install, gen-userdata, create-droplets and health', () => {
    expect(blocks.filter(isInstall).length, 'an "npm ci" block').toBe(1);
    expect(blocks.some((block) => /npx etcd-cloudinit gen-userdata /.test(block.script)), 'a gen-userdata block').toBe(true);
    expect(blocks.some(isDigitalOcean), 'a create-droplets block').toBe(true);
    expect(blocks.some((block) => /npx etcd-cloudinit health\b/.test(block.script)), 'a health block').toBe(true);
    // The install block is not run: this run stands on the checkout `npm ci` builds.
    expect(existsSync(join(REPO_ROOT, 'dist', 'cli.js')), 'dist/ built (npm ci runs prepare)').toBe(true);
  });

  it('names only commands and options the CLI has', () => {
    const commands = cliCommands(section);
    expect(commands.length).toBeGreaterThan(5);
    expect(commands.map(unknownToCli).filter((problem) => problem !== undefined)).toEqual([]);
    // The check itself catches a wrong name and a wrong flag.
    expect(unknownToCli('npx etcd-cloudinit gen-userdat --ips 10.10.0.11')).toMatch(/no command "gen-userdat"/);
    expect(unknownToCli('npx etcd-cloudinit health --ip 10.10.0.11')).toMatch(/health has no option --ip/);
  });

  it('refuses to run a command that names an address outside loopback', () => {
    expect(onLoopback('npx etcd-cloudinit gen-userdata --ips 10.10.0.11,10.10.0.12', '127.9.8')).toBe('npx etcd-cloudinit gen-userdata --ips 127.9.8.11,127.9.8.12');
    expect(() => onLoopback('npx etcd-cloudinit add-member --ip 192.168.1.4', '127.9.8')).toThrow(/refusing to run .* 192\.168\.1\.4/);
  });

  describe.skipIf(!canBootMembers)('members you boot yourself: gen-userdata, boot, health, an application, day 2, on loopback', () => {
    let cluster: LocalCluster | undefined;
    afterAll(async () => cluster?.stop());

    it('runs every block but the DigitalOcean ones, as written', async () => {
      const workDir = newDir();
      const prefix = loopbackBlock(1)[0]!.replace(/\.\d+$/, '');
      const env = { PATH: `${npxStandIn(workDir)}:${systemPath}` };
      for (const block of blocks.filter((candidate) => !isInstall(candidate) && !isDigitalOcean(candidate))) {
        const script = onLoopback(block.script, prefix);
        const run = await runBlock(script, workDir, env);
        expect(run.code, `"${block.heading}" block failed:\n${script}\n${run.stderr}${run.stdout}`).toBe(0);
        if (cluster === undefined && /npx etcd-cloudinit gen-userdata /.test(script)) {
          // The reader boots the machines with the user-data; here each member starts on its loopback address.
          const clusterDir = join(workDir, 'out', 'etcd');
          const record = JSON.parse(readFileSync(join(clusterDir, 'cluster.json'), 'utf8')) as { members: { name: string; ip: string }[] };
          expect(record.members.every((member) => member.ip.startsWith(`${prefix}.`)), 'members on the loopback block').toBe(true);
          cluster = await startLocalCluster(
            clusterDir,
            join(workDir, 'nodes'),
            record.members.map((member) => member.name),
            record.members.map((member) => `https://${member.ip}:2379`),
            120_000,
          );
          expect(run.stdout, 'the printed next step is the health command').toContain('\n  etcd-cloudinit health\n');
        }
      }
      expect(cluster, 'a gen-userdata block made members to boot').toBeDefined();
      const record0 = JSON.parse(readFileSync(join(workDir, 'out', 'etcd', 'cluster.json'), 'utf8')) as { members: { name: string }[] };
      // The application's write is there, read back as admin.
      const read = await etcdctl(cluster!.endpoints, adminTls(join(workDir, 'out', 'etcd', 'pki')), ['get', 'greeting', '--print-value-only']);
      expect(read.stdout.trim(), read.stderr).toBe('hello');

      // Day 2: renew-certs while every member runs (their renewal agents too, as their timers would), then add-member (its learner is never booted here).
      const agents = startRenewAgents(record0.members.map((member) => join(workDir, 'nodes', member.name)));
      try {
        for (const command of ['renew-certs', 'add-member']) {
          const script = onLoopback(tableCommand(section, command), prefix);
          const run = await runBlock(script, workDir, env);
          expect(run.code, `day-2 "${command}" failed:\n${script}\n${run.stderr}${run.stdout}`).toBe(0);
        }
      } finally {
        await agents.stop();
      }
      expect(agents.failures).toEqual([]);
      const record = JSON.parse(readFileSync(join(workDir, 'out', 'etcd', 'cluster.json'), 'utf8')) as { members: { name: string }[] };
      expect(record.members.map((member) => member.name)).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4']);
      expect(existsSync(join(workDir, 'out', 'etcd', 'user-data', 'etcd4.yaml'))).toBe(true);
    }, 600_000);
  });

  describe('on DigitalOcean: create-droplets against the fake API', () => {
    let fake: FakeDigitalOcean | undefined;
    afterAll(async () => fake?.close());

    it('runs the DigitalOcean blocks, as written', async () => {
      const doBlocks = blocks.filter(isDigitalOcean);
      const domains = [...new Set(doBlocks.flatMap((block) => [...block.script.matchAll(/--domain (\S+)/g)].map((match) => match[1]!)))];
      // The zone the reader hosts on DigitalOcean DNS.
      fake = await startFakeDigitalOcean({ domains });
      const workDir = newDir();
      const env = { PATH: `${npxStandIn(workDir)}:${systemPath}`, DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url };
      for (const block of doBlocks) {
        const run = await runBlock(onLoopback(block.script, '127.0.0'), workDir, env);
        expect(run.code, `"${block.heading}" block failed:\n${block.script}\n${run.stderr}${run.stdout}`).toBe(0);
      }
      expect(fake.droplets.size, 'droplets created').toBeGreaterThanOrEqual(3);
      expect(existsSync(join(workDir, 'out', 'etcd', 'digitalocean.json'))).toBe(true);

      // Day 2: destroy-droplets from the table, as written.
      const destroy = await runBlock(tableCommand(section, 'destroy-droplets'), workDir, env);
      expect(destroy.code, `day-2 "destroy-droplets" failed:\n${destroy.stderr}${destroy.stdout}`).toBe(0);
      expect(fake.droplets.size, 'droplets left').toBe(0);
      expect(fake.violations).toEqual([]);
    }, 300_000);
  });
});
