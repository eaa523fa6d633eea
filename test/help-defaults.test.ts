/**
 * Every default a --help states is the one the code applies. The values below come from running
 * the code with the flag left out (the input resolver, the flag parsers, the droplet spec), not
 * from the constants --help is built from; a description that shows another value, a default
 * dropped from a description, or a new "(default ...)" nobody listed here fails.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS, renderCommandHelp } from '../src/cli.js';
import { parseWarnDays } from '../src/commands/health.js';
import { quotaBackendBytesOf } from '../src/day2/health.js';
import { validateCreateFlags } from '../src/commands/create-droplets.js';
import { replaceWaits } from '../src/commands/roll.js';
import { DEFAULT_BACKUP_TIMEOUT_SECONDS, DEFAULT_URL_HOURS, DEFAULT_VPC_DELETE_WAIT_SECONDS } from '../src/defaults.js';
import { DEFAULT_RENEW_TIMEOUT_SECONDS } from '../src/commands/renew-certs.js';
import { dropletWaitOptions } from '../src/day2/droplets.js';
import { parseTimeoutMs } from '../src/day2/open-cluster.js';
import { flagsToRawInput, resolveClusterInput } from '../src/input.js';
import type { ParsedOptions } from '../src/options.js';
import { planCluster } from '../src/plan.js';

const resolve = (flags: ParsedOptions) => resolveClusterInput({}, flagsToRawInput(flags)).input;
const ipInput = resolve({ ips: '10.0.0.1,10.0.0.2,10.0.0.3', 'backup-url': 's3://acme/prod', 'backup-region': 'nyc3' });
const dnsInput = resolve({ domain: 'example.com' });
const dnsPlan = planCluster(dnsInput, '/nonexistent/out/etcd');
const created = validateCreateFlags({ domain: 'example.com', region: 'nyc3' }, '/nonexistent');
/** The value a validation error names when the flag is left out: etcd's own raft defaults, which the checks assume. */
const namedInError = (flags: ParsedOptions, pattern: RegExp) => {
  try {
    resolve({ ips: '10.0.0.1', ...flags });
  } catch (error) {
    return pattern.exec((error as Error).message)![1]!;
  }
  throw new Error(`${JSON.stringify(flags)} was accepted`);
};
const seconds = (ms: number) => String(ms / 1000);
const names = (members: readonly { name: string }[]) => `${members[0]!.name}..${members.at(-1)!.name}`;

/** What the code does when the option is left out; as --help must say it. */
const CODE_DEFAULTS: Record<string, string> = {
  'cluster-name': ipInput.clusterName,
  out: ipInput.out,
  'etcd-version': ipInput.etcdVersion,
  'release-url': ipInput.releaseUrl,
  install: ipInput.install,
  'key-type': ipInput.keyType,
  'key-size': String(ipInput.keySize),
  'cert-days': String(ipInput.certDays),
  'heartbeat-interval': `etcd's ${namedInError({ 'election-timeout': '101' }, /heartbeat-interval \((\d+)\)/)}`,
  'election-timeout': `etcd's ${namedInError({ 'heartbeat-interval': '999' }, /election-timeout: (\d+) must/)}`,
  // Not written to the config when left out: etcd's own, which health measures the database against.
  'quota-backend-bytes': `etcd's ${quotaBackendBytesOf(planCluster(ipInput, '/nonexistent/out/etcd'))}`,
  'snapshot-schedule': ipInput.snapshotSchedule,
  'snapshot-retain': String(ipInput.snapshotRetain),
  'defrag-schedule': ipInput.defragSchedule,
  'defrag-threshold': String(ipInput.defragThreshold),
  'backup-retain': String(ipInput.backup!.retain),
  'backup-endpoint': ipInput.backup!.endpoint.replace('nyc3', '<backup-region>'),
  'k8s-pki-dir': ipInput.k8sPkiDir,
  'listen-from': dnsPlan.listenAddress.source === 'metadata' ? dnsPlan.listenAddress.from.from : 'static',
  // gen-userdata: names follow the addresses; --domain without --names makes this many.
  names: `etcd1..etcdN`,
  domain: names(dnsInput.members),
  timeout: seconds(parseTimeoutMs({})),
  'warn-days': String(parseWarnDays({})),
  'wait-timeout': seconds(dropletWaitOptions({}).waitTimeoutMs),
  'poll-interval': seconds(dropletWaitOptions({}).pollIntervalMs),
  'catch-up-timeout': seconds(replaceWaits({}).catchUpMs),
  'url-expiry': String(DEFAULT_URL_HOURS),
  size: created.spec.size,
  image: String(created.spec.image),
  ttl: String(created.spec.ttl),
  count: String(created.input.members.length),
  'ssh-from': 'what digitalocean.json records, else no SSH from anywhere',
  'client-endpoint': 'with --domain: <cluster-name>.<zone>',
  'trusted-source': 'what digitalocean.json records, else none',
  'vpc-uuid': 'a new VPC etcd-cluster-<cluster-name>',
  'vpc-range': 'DigitalOcean picks one',
  snapshot: 'the newest restorable one, with a recorded SHA-256',
};

/** Where a command's default is not gen-userdata's; null: its --help states none. */
const THE_CLUSTERS = "the cluster's";
const COMMAND_DEFAULTS: Record<string, Record<string, string | null>> = {
  // roll keeps the cluster's settings: its --help must not promise gen-userdata's defaults.
  roll: {
    'etcd-version': THE_CLUSTERS,
    'release-url': THE_CLUSTERS,
    install: THE_CLUSTERS,
    'etcd-sha256': "the cluster's pin, if any",
    'key-type': THE_CLUSTERS,
    'key-size': THE_CLUSTERS,
    size: THE_CLUSTERS,
    image: THE_CLUSTERS,
    member: 'every member, the leader last',
    'poll-interval': seconds(replaceWaits({}).pollMs),
  },
  repair: { 'poll-interval': seconds(replaceWaits({}).pollMs) },
  'add-member': { name: 'the first free etcdN' },
  'renew-certs': {
    member: 'every member, the admin and every client certificate',
    'rotate-keys': 'keep each key',
    'cert-days': 'certDays in cluster.json',
    timeout: String(DEFAULT_RENEW_TIMEOUT_SECONDS),
  },
  'create-droplets': { domain: null, names: 'etcd1..etcdN' },
  'destroy-droplets': { domain: 'the zone in out/<cluster-name>/digitalocean.json', 'wait-timeout': String(DEFAULT_VPC_DELETE_WAIT_SECONDS) },
  backups: { 'backup-url': "the cluster's, from cluster.json" },
  'create-backup': { timeout: String(DEFAULT_BACKUP_TIMEOUT_SECONDS) },
  restore: { domain: names(dnsInput.members) },
};

/** The default one help row states: "(default X)", "(default: X)", "; default: X", ", default X". */
function shownDefault(help: string, option: string): string | undefined {
  const row = help.split('\n').find((line) => new RegExp(`^ +(-\\w, )?--${option}( |$)`).test(line));
  if (row === undefined) throw new Error(`--${option} has no row in --help`);
  return /(?:\(|; |, )default:? ([^;)]+)/.exec(row)?.[1];
}

describe('--help states the defaults the code uses', () => {
  it.each(COMMANDS.map((command) => [command.name, command] as const))('%s', (_name, command) => {
    const help = renderCommandHelp(command);
    for (const option of command.options) {
      const overrides = COMMAND_DEFAULTS[command.name] ?? {};
      const expected = option.name in overrides ? overrides[option.name] : CODE_DEFAULTS[option.name];
      expect(shownDefault(help, option.name) ?? null, `${command.name} --${option.name}`).toBe(expected ?? null);
    }
  });

  it('the values above are the real ones (a sample, so a broken derivation shows)', () => {
    expect(CODE_DEFAULTS).toMatchObject({
      'key-type': 'rsa',
      'key-size': '4096',
      install: 'download',
      'cert-days': '825',
      'heartbeat-interval': "etcd's 100",
      'election-timeout': "etcd's 1000",
      timeout: '5',
      'listen-from': 'do-metadata',
      domain: 'etcd1..etcd3',
      count: '3',
    });
  });
});

/** The option table of docs/reference.md (gen-userdata's): flag -> its default column, backticks dropped. */
function documentedDefaults(markdown: string): Map<string, string> {
  const rows = markdown.split('\n').filter((line) => /^\| `--[a-z0-9-]+/.test(line));
  return new Map(
    rows.map((row) => {
      const [, flag, shown] = row.split('|');
      return [/--([a-z0-9-]+)/.exec(flag!)![1]!, shown!.replaceAll('`', '').trim()];
    }),
  );
}

describe('docs/reference.md states the defaults the code uses', () => {
  it("every default in gen-userdata's option table is the code's", () => {
    const documented = documentedDefaults(readFileSync(new URL('../docs/reference.md', import.meta.url), 'utf8'));
    expect(documented.size, 'the option table of docs/reference.md').toBeGreaterThan(20);
    const checked: string[] = [];
    for (const [flag, shown] of documented) {
      // Empty: no default; "(required)": none either; create-droplets' backup region is its own row.
      if (shown === '' || shown === '(required)' || flag === 'backup-region') continue;
      expect(CODE_DEFAULTS[flag], `--${flag}: docs/reference.md says ${shown}`).toBeDefined();
      expect(shown, `--${flag} in docs/reference.md`).toBe(CODE_DEFAULTS[flag]);
      checked.push(flag);
    }
    expect(checked).toEqual(expect.arrayContaining(['etcd-version', 'key-type', 'key-size', 'cert-days', 'install', 'snapshot-schedule', 'backup-retain']));
  });
});
