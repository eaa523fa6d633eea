import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, tempDirsRemovedAfterAll, type CliRun } from './support/cli.js';

const workDir = tempDirsRemovedAfterAll('startup');
const MODULE_LOG_HOOK = pathToFileURL(join(REPO_ROOT, 'test', 'support', 'module-log.mjs')).href;
const REPO_URL = pathToFileURL(REPO_ROOT).href;

/** dots, kiota, and our modules that import them (digitalocean/members.js, errors.js and types.js import neither). */
const DIGITALOCEAN_SDK = /(^|\/)node_modules\/@(digitalocean|microsoft)\/|^dist\/digitalocean\/(?!(members|errors|types)\.js$)/;
const PACKAGE = /(^|\/)node_modules\//;

/** The built CLI run as a user would, plus every module the process resolved (repository-relative where inside it). */
async function runCliLoggingModules(args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<CliRun & { modules: string[] }> {
  const log = join(workDir(), 'modules.log');
  // A resolve hook (test/support/module-log.mjs) sees every ESM import, static or dynamic, before it loads.
  const result = await runCli(args, cwd, { ...env, NODE_OPTIONS: `--import=${MODULE_LOG_HOOK}`, MODULE_LOG: log });
  const modules = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((url) => url.replace(REPO_URL, ''));
  return { ...result, modules };
}

describe('start-up: a command is loaded only when it runs', () => {
  it.each([[['--help']], [['gen-userdata', '--help']], [['health', '--help']]])('%j loads no command module and no dependency', async (args) => {
    const run = await runCliLoggingModules(args, workDir());
    expect(run.code, run.stderr).toBe(0);
    expect(run.modules).toContain('dist/cli.js');
    expect(run.modules.filter((module) => module.startsWith('dist/commands/'))).toEqual(['dist/commands/specs.js']);
    expect(run.modules.filter((module) => PACKAGE.test(module))).toEqual([]);
  });
});

describe('start-up: only the commands that call DigitalOcean load its SDK', () => {
  const cwd = workDir();
  let generated: Awaited<ReturnType<typeof runCliLoggingModules>>;

  beforeAll(async () => {
    // Loopback members refuse at once, so the day-2 commands below fail fast at their preflight.
    generated = await runCliLoggingModules(['gen-userdata', '--ips', '127.0.0.11,127.0.0.12,127.0.0.13', '--key-size', '2048'], cwd);
  });

  it('gen-userdata writes a cluster without loading @digitalocean/dots or kiota', () => {
    expect(generated.code, generated.stderr).toBe(0);
    expect(generated.modules).toContain('dist/commands/gen-userdata.js');
    expect(generated.modules.filter((module) => DIGITALOCEAN_SDK.test(module))).toEqual([]);
  });

  it.each([
    ['health', ['health', '--timeout', '1'], 1],
    ['add-member', ['add-member', '--ip', '127.0.0.14', '--timeout', '1'], 1],
    ['remove-member', ['remove-member', '--name', 'etcd3', '--yes', '--timeout', '1'], 1],
    ['renew-certs', ['renew-certs', '--via-ssh-script'], 0],
    ['roll', ['roll', '--ips', '127.0.0.21,127.0.0.22,127.0.0.23', '--timeout', '1'], 1],
  ])('%s on a cluster gen-userdata made does not load it', async (name, args, code) => {
    const run = await runCliLoggingModules(args, cwd);
    expect(run.code, run.stderr).toBe(code);
    expect(run.modules).toContain(`dist/commands/${name}.js`);
    expect(run.modules.filter((module) => DIGITALOCEAN_SDK.test(module))).toEqual([]);
  });

  it('create-droplets does load it (so the log above would show it)', async () => {
    const run = await runCliLoggingModules(['create-droplets'], workDir());
    expect(run.code).toBe(2);
    expect(run.modules.filter((module) => DIGITALOCEAN_SDK.test(module))).toEqual(
      expect.arrayContaining(['dist/digitalocean/http.js', expect.stringMatching(/(^|\/)node_modules\/@digitalocean\/dots\//), expect.stringMatching(/(^|\/)node_modules\/@microsoft\/kiota-/)]),
    );
  });
});

/** The AWS SDK (and our module that imports it): only backups and restore talk to a bucket. */
const AWS_SDK = /(^|\/)node_modules\/@(aws-sdk|smithy)\/|^dist\/backup\/store\.js$/;

describe('start-up: only backups and restore load the AWS SDK', () => {
  const cwd = workDir();
  const env = { SPACES_ACCESS_KEY_ID: 'AK', SPACES_SECRET_ACCESS_KEY: 'SK' };

  it('gen-userdata --backup-url writes the upload units without loading it', async () => {
    const run = await runCliLoggingModules(['gen-userdata', '--ips', '127.0.0.31', '--key-size', '2048', '--backup-url', 's3://acme-etcd/p', '--backup-region', 'nyc3'], cwd, env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.modules.filter((module) => AWS_SDK.test(module))).toEqual([]);
  });

  it('backups does load it (so the check above would see it)', async () => {
    // Nothing listens on 127.0.0.1:9: the listing fails after the SDK is loaded.
    const run = await runCliLoggingModules(['backups', '--backup-url', 's3://acme-etcd/p', '--backup-endpoint', 'http://127.0.0.1:9'], cwd, env);
    expect(run.code).toBe(1);
    expect(run.modules.filter((module) => AWS_SDK.test(module))).toEqual(expect.arrayContaining(['dist/backup/store.js', expect.stringMatching(/node_modules\/@aws-sdk\/client-s3\//)]));
  });
});
