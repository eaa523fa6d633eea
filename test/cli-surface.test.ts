/**
 * The command line's own surface: "did you mean" for commands and flags, the completion scripts
 * (bash checked with bash's own compgen), --version, and remove-member's confirmation.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS, main } from '../src/cli.js';
import { folderSnapshot, runCli, tempDirsRemovedAfterAll } from './support/cli.js';
import { runProcess } from './support/local-cluster.js';

const newDir = tempDirsRemovedAfterAll('cli-surface');
const hasProgram = (program: string) => runProcess(program, ['--version']).then((run) => run.code === 0, () => false);

describe('did you mean', () => {
  it.each([
    [['gen-userdat'], 'etcd-cloudinit: unknown command "gen-userdat"; did you mean gen-userdata?'],
    [['helth'], 'etcd-cloudinit: unknown command "helth"; did you mean health?'],
    [['remove-membr', '--name', 'etcd3'], 'etcd-cloudinit: unknown command "remove-membr"; did you mean remove-member?'],
    [['gen-userdata', '--ip', '10.0.0.1'], "etcd-cloudinit gen-userdata: [parse] Unknown option '--ip'; did you mean --ips?"],
    [['health', '--warn-day', '3'], "etcd-cloudinit health: [parse] Unknown option '--warn-day'; did you mean --warn-days?"],
    [['add-member', '--dryrun'], "etcd-cloudinit add-member: [parse] Unknown option '--dryrun'; did you mean --dry-run?"],
    [['completion', 'bsh'], 'etcd-cloudinit completion: [validate] shell: "bsh" is not one of bash, zsh, fish; did you mean bash?'],
  ])('%j', async (args, message) => {
    const run = await runCli(args, newDir());
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toBe(message);
    expect(run.stdout).toBe('');
  });

  it.each([
    [['frobnicate'], 'etcd-cloudinit: unknown command "frobnicate"'],
    [['health', '--zzz'], "etcd-cloudinit health: [parse] Unknown option '--zzz'"],
  ])('no suggestion when nothing is close: %j', async (args, message) => {
    const run = await runCli(args, newDir());
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toBe(message);
  });
});

describe('completion', () => {
  /** What bash's completion function offers for the words typed so far (the last is the one being completed). */
  async function bashComplete(script: string, words: readonly string[]): Promise<string[]> {
    const file = join(newDir(), 'etcd-cloudinit.bash');
    writeFileSync(file, script);
    const quoted = words.map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
    const run = await runProcess('bash', ['-c', `source "$0"; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _etcd_cloudinit; printf '%s\\n' "\${COMPREPLY[@]}"`, file]);
    expect(run.code, run.stderr).toBe(0);
    return run.stdout.split('\n').filter((line) => line !== '');
  }

  it('bash: commands, then the flags of each command from its specs, then values', async () => {
    const { code, stdout: script } = await runCli(['completion', 'bash'], newDir());
    expect(code).toBe(0);
    expect(await bashComplete(script, ['etcd-cloudinit', 'gen-'])).toEqual(['gen-userdata']);
    expect(await bashComplete(script, ['etcd-cloudinit', 'health', '--wa'])).toEqual(['--warn-days']);
    expect(await bashComplete(script, ['etcd-cloudinit', ''])).toEqual(COMMANDS.map((command) => command.name));
    expect(await bashComplete(script, ['etcd-cloudinit', 'health', '-o', ''])).toEqual(['json', 'text', 'table']);
    expect(await bashComplete(script, ['etcd-cloudinit', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
    expect(await bashComplete(script, ['etcd-cloudinit', 'remove-member', '--y'])).toEqual(['--yes']);
    // After a flag that takes a value, no flags are offered.
    expect(await bashComplete(script, ['etcd-cloudinit', 'health', '--warn-days', ''])).toEqual([]);
    // Every flag of every command, as its specs declare it (a new flag in specs.ts appears without more).
    for (const command of COMMANDS) {
      const offered = await bashComplete(script, ['etcd-cloudinit', command.name, '--']);
      // An alias (remove-member's --name for --member) completes right after its option.
      expect(offered, command.name).toEqual(command.options.flatMap((option) => [`--${option.name}`, ...(option.aliases ?? []).map((alias) => `--${alias}`)]));
    }
  });

  it.each(['zsh', 'fish'] as const)('%s: parses if the shell is here, and names every command and flag', async (shell) => {
    const { code, stdout: script } = await runCli(['completion', shell], newDir());
    expect(code).toBe(0);
    for (const command of COMMANDS) {
      expect(script).toContain(shell === 'zsh' ? `'${command.name}:` : `-a ${command.name} -d`);
      for (const name of command.options.flatMap((option) => [option.name, ...(option.aliases ?? [])])) {
        expect(script, `${command.name} --${name}`).toMatch(shell === 'zsh' ? `--${name}` : `-l ${name}`);
      }
    }
    if (await hasProgram(shell)) {
      const file = join(newDir(), `completion.${shell}`);
      writeFileSync(file, script);
      const check = await runProcess(shell, ['-n', file]);
      expect(check.code, check.stderr).toBe(0);
      if (shell === 'fish') {
        // fish completes a command line itself: `complete -C` prints the candidates, a tab before each description.
        const complete = async (line: string) => {
          const run = await runProcess('fish', ['-c', `source $argv[1]; complete -C ${JSON.stringify(line)}`, file]);
          expect(run.code, run.stderr).toBe(0);
          return run.stdout.split('\n').filter((row) => row !== '').map((row) => row.split('\t')[0]);
        };
        expect(await complete('etcd-cloudinit gen-')).toEqual(['gen-userdata']);
        expect(await complete('etcd-cloudinit health --wa')).toEqual(['--warn-days']);
        expect((await complete('etcd-cloudinit health -o ')).sort()).toEqual(['json', 'table', 'text']);
      }
    }
  });
});

describe('remove-member asks first', () => {
  async function clusterFolder(): Promise<string> {
    const dir = newDir();
    const made = await runCli(['gen-userdata', '--ips', '127.0.0.1,127.0.0.2,127.0.0.3', '--key-size', '2048'], dir);
    expect(made.code, made.stderr).toBe(0);
    return dir;
  }

  it('with stdin not a terminal and no --yes: a clear error, exit 2, nothing changed', async () => {
    const dir = await clusterFolder();
    const before = folderSnapshot(dir);
    const run = await runCli(['remove-member', '--name', 'etcd3'], dir);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toBe(
      'etcd-cloudinit remove-member: [validate] yes: refusing to remove member etcd3 (127.0.0.3) from cluster etcd without confirmation; stdin is not a terminal to ask on, so pass --yes',
    );
    expect(folderSnapshot(dir)).toEqual(before);
    // --yes gets past the question to the cluster (which is not running here).
    const yes = await runCli(['remove-member', '--name', 'etcd3', '--yes', '--timeout', '1'], dir);
    expect(yes.code).toBe(1);
    expect(yes.stderr).toContain('[preflight] no remaining member answered member list');
    expect(folderSnapshot(dir)).toEqual(before);
  });

  it('on a terminal: the question names the member; "no" removes nothing (exit 1), "yes" goes on', async () => {
    const dir = await clusterFolder();
    const before = folderSnapshot(dir);
    const io = () => {
      const out = { stdout: '', stderr: '' };
      return { out, io: { env: {}, cwd: dir, stdout: { write: (text: string) => (out.stdout += text) }, stderr: { write: (text: string) => (out.stderr += text) } } };
    };
    const questions: string[] = [];
    const declined = io();
    const code = await main(['remove-member', '--name', 'etcd2'], declined.io, { confirm: async (question) => (questions.push(question), false) });
    expect(code).toBe(1);
    expect(questions).toEqual(['Remove member etcd2 (127.0.0.2) from cluster etcd? [y/N] ']);
    expect(declined.out.stderr).toBe('Nothing removed.\n');
    expect(folderSnapshot(dir)).toEqual(before);
    const accepted = io();
    expect(await main(['remove-member', '--name', 'etcd2', '--timeout', '1'], accepted.io, { confirm: async () => true })).toBe(1);
    expect(accepted.out.stderr).toContain('[preflight] no remaining member answered member list');
  });
});
