import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { CommandContext } from '../context.js';
import { CliError, EXIT_FAILURE, usageError } from '../errors.js';
import { flagsToRawInput, memberHostname, resolveClusterInput, type ClusterInput } from '../input.js';
import type { OptionSpec, ParsedOptions } from '../options.js';
import { planCluster } from '../plan.js';
import { PUBLIC_MODE, readJsonIfValid, withFolderLock, writeOutputFile } from '../write.js';
import { createDigitalOceanApi, DigitalOceanApiError, resolveDigitalOceanConfig, type DigitalOceanApi } from '../digitalocean/client.js';
import { recordingApi } from '../digitalocean/dry-run.js';
import {
  clusterTag,
  createDropletCluster,
  destroyDropletCluster,
  findDropletCluster,
  PartialClusterError,
  type CreateResult,
  type DropletClusterSpec,
  type DropletMember,
} from '../digitalocean/cluster.js';
import { CLUSTER_OPTIONS, generateCluster, type GeneratedCluster } from './gen-userdata.js';

export const DEFAULT_SIZE = 's-1vcpu-2gb';
export const DEFAULT_IMAGE = 'ubuntu-24-04-x64';
export const DEFAULT_TTL = 60;
/** Where create-droplets records what it made, for destroy-droplets and for the user. */
export const STATE_FILE = 'digitalocean.json';

const clusterOption = (name: string) => CLUSTER_OPTIONS.find((option) => option.name === name)!;

export const CREATE_DROPLETS_OPTIONS: readonly OptionSpec[] = [
  { name: 'domain', type: 'string', valueName: 'zone', description: 'DigitalOcean DNS zone for the members: <cluster-name>-<member>.<zone> (required)' },
  { name: 'region', type: 'string', valueName: 'slug', description: 'Region of the droplets and VPC, e.g. nyc3 (required)' },
  { name: 'ssh-key', type: 'string', valueName: 'fingerprint|id', multiple: true, description: 'SSH key already in the account, for the default user (repeatable)' },
  { name: 'ssh-from', type: 'string', valueName: 'cidr', multiple: true, description: 'Open port 22 to this CIDR (repeatable; default: no SSH from anywhere)' },
  { name: 'size', type: 'string', valueName: 'slug', description: `Droplet size (default ${DEFAULT_SIZE})` },
  { name: 'image', type: 'string', valueName: 'slug|id', description: `Distribution slug or snapshot id (default ${DEFAULT_IMAGE})` },
  { name: 'count', type: 'string', valueName: 'n', description: 'Number of members, named etcd1..etcdN (default 3; --names sets names and count)' },
  { name: 'names', type: 'string', valueName: 'n1,n2,n3', description: 'Member names (default etcd1..etcdN); droplet and DNS label <cluster-name>-<name>' },
  clusterOption('cluster-name'),
  { name: 'vpc-uuid', type: 'string', valueName: 'uuid', description: 'Put the droplets in this existing VPC (default: a new VPC etcd-cluster-<cluster-name>)' },
  { name: 'vpc-range', type: 'string', valueName: 'cidr', description: 'IP range of the new VPC, e.g. 10.20.0.0/20 (default: DigitalOcean picks one)' },
  { name: 'ttl', type: 'string', valueName: 'seconds', description: `TTL of the members' A records (default ${DEFAULT_TTL}, minimum 30)` },
  { name: 'wait-timeout', type: 'string', valueName: 'seconds', description: 'Give up waiting for droplets to become active after this long (default 600)' },
  { name: 'poll-interval', type: 'string', valueName: 'seconds', description: 'Seconds between status checks while waiting (default 5)' },
  { name: 'dry-run', type: 'boolean', description: 'Print every API call that would change something, change nothing (reads still happen)' },
  { name: 'json', type: 'boolean', description: 'Print the result as JSON on stdout (progress stays on stderr)' },
  ...['out', 'install', 'etcd-version', 'release-url', 'etcd-sha256', 'key-size', 'cert-days', 'allow-even', 'force'].map(clusterOption),
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const DESTROY_DROPLETS_OPTIONS: readonly OptionSpec[] = [
  clusterOption('cluster-name'),
  { name: 'domain', type: 'string', valueName: 'zone', multiple: true, description: `Remove the members' A records from this zone (default: the zone in out/<cluster-name>/${STATE_FILE})` },
  clusterOption('out'),
  { name: 'yes', type: 'boolean', short: 'y', description: 'Do not ask for confirmation' },
  { name: 'dry-run', type: 'boolean', description: 'Print every API call that would delete something, delete nothing' },
  { name: 'json', type: 'boolean', description: 'Print what was (or would be) deleted as JSON on stdout' },
  { name: 'wait-timeout', type: 'string', valueName: 'seconds', description: 'How long to retry deleting the VPC while DigitalOcean releases the droplets (default 120)' },
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function numberFlag(flags: ParsedOptions, name: string, fallback: number, check: (n: number) => boolean, rule: string): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!check(value)) throw usageError('validate', `${name}: ${JSON.stringify(raw)} ${rule}`);
  return value;
}

function stringFlag(flags: ParsedOptions, name: string): string | undefined {
  const value = flags[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

function listFlag(flags: ParsedOptions, name: string): string[] {
  const value = flags[name];
  const items = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  return items.flatMap((item) => item.split(',')).map((item) => item.trim()).filter((item) => item !== '');
}

const IPV4_CIDR = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)\/(3[0-2]|[12]?\d)$/;
const IPV6_CIDR = /^[0-9a-f:]+:[0-9a-f:]*\/(12[0-8]|1[01]\d|\d?\d)$/i;

/** The real API, or with --dry-run the recording wrapper around it: the flows take either. */
function api(context: CommandContext, progress: (line: string) => void, dryRun: boolean): DigitalOceanApi {
  let config;
  try {
    config = resolveDigitalOceanConfig(context.env);
  } catch (error) {
    throw new CliError('preflight', (error as Error).message, EXIT_FAILURE);
  }
  const real = createDigitalOceanApi(config, {
    onRetry: ({ status, waitSeconds, attempt }) => progress(`api: HTTP ${status}, retrying in ${waitSeconds} s (attempt ${attempt})`),
  });
  return dryRun ? recordingApi(real, progress) : real;
}

/** validate: the flags of create-droplets into the cluster input (DNS-member mode) and the droplet spec. */
export function validateCreateFlags(flags: ParsedOptions): { input: ClusterInput; spec: DropletClusterSpec } {
  const domain = stringFlag(flags, 'domain');
  if (!domain) throw usageError('validate', 'domain: is required: the DigitalOcean DNS zone the member names live in (--domain example.com)');
  const region = stringFlag(flags, 'region');
  if (!region) throw usageError('validate', 'region: is required, e.g. --region nyc3');
  if (!/^[a-z]{3}\d$/.test(region)) throw usageError('validate', `region: ${JSON.stringify(region)} is not a region slug like nyc3`);
  if (flags.names !== undefined && flags.count !== undefined) throw usageError('validate', 'count: give --names or --count, not both');
  const count = numberFlag(flags, 'count', 3, (n) => Number.isInteger(n) && n >= 1 && n <= 9, 'is not a member count from 1 to 9');
  const raw = flagsToRawInput(flags);
  raw.domain = domain.toLowerCase();
  raw.names ??= Array.from({ length: count }, (_, index) => `etcd${index + 1}`);
  const { input } = resolveClusterInput({}, raw);

  const members: DropletMember[] = input.members.map((member, index) => {
    const dropletName = `${input.clusterName}-${member.name}`;
    // Every published spec version accepts 2-32 characters of [a-z0-9-]; the record name is the same label.
    if (dropletName.length > 32) {
      throw usageError('validate', `names[${index}]: droplet name ${JSON.stringify(dropletName)} (<cluster-name>-<member>) is longer than 32 characters; use shorter names`);
    }
    return { name: member.name, dropletName, hostname: member.hostname ?? memberHostname(input.clusterName, member.name, domain) };
  });

  const sshFrom = listFlag(flags, 'ssh-from');
  for (const [index, cidr] of sshFrom.entries()) {
    if (!IPV4_CIDR.test(cidr) && !IPV6_CIDR.test(cidr)) throw usageError('validate', `ssh-from[${index}]: ${JSON.stringify(cidr)} is not a CIDR like 198.51.100.7/32`);
  }
  const vpcRange = stringFlag(flags, 'vpc-range');
  if (vpcRange !== undefined && !IPV4_CIDR.test(vpcRange)) throw usageError('validate', `vpc-range: ${JSON.stringify(vpcRange)} is not an IPv4 CIDR like 10.20.0.0/20`);
  const vpcUuid = stringFlag(flags, 'vpc-uuid');
  if (vpcUuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(vpcUuid)) {
    throw usageError('validate', `vpc-uuid: ${JSON.stringify(vpcUuid)} is not a VPC id (a UUID)`);
  }
  if (vpcUuid !== undefined && vpcRange !== undefined) throw usageError('validate', 'vpc-range: only for a new VPC; it cannot be given with --vpc-uuid');
  const imageFlag = stringFlag(flags, 'image') ?? DEFAULT_IMAGE;
  const image = /^\d+$/.test(imageFlag) ? Number(imageFlag) : imageFlag;
  const sshKeys = listFlag(flags, 'ssh-key');
  const ttl = numberFlag(flags, 'ttl', DEFAULT_TTL, (n) => Number.isInteger(n) && n >= 30 && n <= 86400, 'is not a TTL in whole seconds from 30 to 86400');
  return {
    input,
    spec: {
      clusterName: input.clusterName,
      domain: domain.toLowerCase(),
      region,
      size: stringFlag(flags, 'size') ?? DEFAULT_SIZE,
      image,
      sshKeys,
      sshFrom,
      vpcUuid,
      vpcRange,
      ttl,
      members,
    },
  };
}

function renderCreateSummary(result: CreateResult, outDirShown: string): string {
  const width = Math.max(...result.members.map((m) => m.name.length)) + 2;
  const lines = [
    `Cluster ${result.clusterName} on DigitalOcean: ${result.members.length} droplet(s) in ${result.region}, VPC ${result.vpc.name} (${result.vpc.ipRange ?? '?'}), tag ${result.tag}`,
    ...result.members.map(
      (m) =>
        `  ${m.name.padEnd(width)}droplet ${m.dropletId} (${m.droplet})  ${m.hostname} -> ${m.privateIpv4}${m.publicIpv4 ? `  public ${m.publicIpv4}` : ''}  DNS ${m.dnsRecord}`,
    ),
    `  firewall ${result.firewall.name} (${result.firewall.outcome}): 2379-2380 only from the tag and the VPC`,
    `Endpoints: ${result.members.map((m) => `https://${m.hostname}:2379`).join(',')}`,
    `State: ${outDirShown}/${STATE_FILE}`,
    '',
    'etcd starts when cloud-init has installed it and the names resolve (a few minutes). The names',
    'resolve to private addresses and only the VPC may reach ports 2379-2380, so check from a machine',
    `in the VPC that has ${outDirShown}/ at the same path:`,
    `  . ${outDirShown}/etcdctl.env && etcdctl endpoint health --cluster`,
    '',
  ];
  return lines.join('\n');
}

export async function runCreateDroplets(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const { input, spec } = validateCreateFlags(flags);
  const dryRun = flags['dry-run'] === true;
  const json = flags.json === true;
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const waitTimeoutMs = numberFlag(flags, 'wait-timeout', 600, (n) => n > 0 && n <= 3600, 'is not a number of seconds from 1 to 3600') * 1000;
  const pollIntervalMs = numberFlag(flags, 'poll-interval', 5, (n) => n > 0 && n <= 60, 'is not a number of seconds up to 60') * 1000;
  const client = api(context, progress, dryRun);
  if (typeof spec.image === 'number' && input.install !== 'baked') {
    progress('note: --image is a snapshot id; if it was baked with packer/ (docs/packer.md), add --install baked so nodes skip the download');
  }
  if (spec.sshKeys.length === 0) progress('note: no --ssh-key: the droplets get no SSH key (DigitalOcean then emails a root password)');

  // plan -> mint -> render -> write: the same user-data gen-userdata --domain writes for these members.
  // Only once the API has accepted the token and the domain, and only if a droplet is missing.
  let generated: Promise<GeneratedCluster> | undefined;
  const plan = planCluster(input, context.cwd);
  const outDir = plan.outDir;
  const outDirShown = relative(context.cwd, outDir).startsWith('..') ? outDir : relative(context.cwd, outDir) || '.';
  const userDataOf = async (member: DropletMember) => {
    if (!generated) {
      generated = generateCluster(input, context, flags.force === true);
      await generated;
      progress(`pki: wrote ${outDirShown}/ (CA, member and admin certificates, user-data; the CA key stays there)`);
    }
    return (await generated).userData.get(member.name)!;
  };
  // Resuming adds members to a cluster that already booted: they must share its CA and its
  // initial-cluster, or they can never join. Both live in out/<cluster>/.
  const checkResume = (existing: readonly DropletMember[], missing: readonly DropletMember[]) => {
    const names = (list: readonly DropletMember[]) => list.map((m) => m.dropletName).join(', ');
    if (!existsSync(join(outDir, 'pki', 'ca.key'))) {
      throw new CliError(
        'preflight',
        `droplets ${names(existing)} of cluster ${spec.clusterName} exist, but ${outDirShown}/pki/ca.key does not: new members would get another CA and never join. Run from the folder that holds ${outDirShown}/ (or --out), or destroy the cluster and create it again`,
      );
    }
    const before = readJsonIfValid<{ initialCluster?: string }>(join(outDir, 'cluster.json'));
    if (before?.initialCluster !== undefined && before.initialCluster !== plan.initialCluster) {
      throw new CliError(
        'preflight',
        `droplets ${names(existing)} exist with initial-cluster ${before.initialCluster}; this run plans ${plan.initialCluster}. Resuming creates only ${names(missing)} of the same members: use the same --names/--count and --domain (changing membership is a day-2 operation)`,
      );
    }
  };

  const createAndRecord = async (): Promise<CreateResult> => {
    let result: CreateResult;
    try {
      result = await createDropletCluster(client, spec, {
        progress,
        sleep,
        now: () => context.now().getTime(),
        waitTimeoutMs,
        pollIntervalMs,
        userData: userDataOf,
        checkResume,
        userDataPath: (member) => `${outDirShown}/user-data/${member.name}.yaml`,
      });
    } catch (error) {
      throw toCreateError(error, spec, flags);
    }

    if (!dryRun) {
      const state = {
        clusterName: result.clusterName,
        region: result.region,
        domain: result.domain,
        tag: result.tag,
        vpc: result.vpc,
        firewall: result.firewall,
        members: result.members.map(({ name, dropletName, hostname, dropletId, privateIpv4, publicIpv4 }) => ({ name, dropletName, hostname, dropletId, privateIpv4, publicIpv4 })),
        updatedAt: context.now().toISOString(),
      };
      writeOutputFile(outDir, { path: STATE_FILE, content: `${JSON.stringify(state, null, 2)}\n`, mode: PUBLIC_MODE });
    }
    return result;
  };
  // The API calls can take minutes: the folder stays locked until the state file is written.
  const result = dryRun ? await createAndRecord() : await withFolderLock(outDir, 'create-droplets', context.now(), createAndRecord);

  if (json) {
    context.stdout.write(`${JSON.stringify({ dryRun, ...result, endpoints: result.members.map((m) => `https://${m.hostname}:2379`), etcdctlEnv: `${outDirShown}/etcdctl.env` }, null, 2)}\n`);
  } else if (dryRun) {
    context.stdout.write(`Dry run: ${result.plannedCalls.length} call(s) would change something (listed above); nothing was changed or written.\n`);
  } else {
    context.stdout.write(renderCreateSummary(result, outDirShown));
  }
  return 0;
}

function resumeAdvice(spec: DropletClusterSpec, flags: ParsedOptions): string {
  const clusterFlag = typeof flags['cluster-name'] === 'string' ? ` --cluster-name ${spec.clusterName}` : '';
  return [
    'Re-run the same create-droplets command to resume: it finds these by tag and creates only what is missing.',
    `Or remove everything: etcd-cloudinit destroy-droplets${clusterFlag || ` --cluster-name ${spec.clusterName}`} --domain ${spec.domain} --yes`,
  ].join('\n');
}

function toCreateError(error: unknown, spec: DropletClusterSpec, flags: ParsedOptions): unknown {
  if (error instanceof PartialClusterError) {
    return new CliError(
      'api',
      [
        error.message,
        `Exists now: ${error.existing.join(', ')}.`,
        `Not done: ${error.missing.join(', ')}.`,
        resumeAdvice(spec, flags),
      ].join('\n'),
    );
  }
  if (error instanceof DigitalOceanApiError) {
    // Nothing exists yet (a failure after something was created is a PartialClusterError).
    if (error.operation === 'preflight' || error.kind === 'auth') return new CliError('preflight', error.message);
    return new CliError('api', `${error.message}\nNothing was created.`);
  }
  return error;
}

interface StateFile {
  domain?: string;
  members?: { dropletName?: string }[];
}

const readState = (outDir: string) => readJsonIfValid<StateFile>(join(outDir, STATE_FILE));

async function ttyConfirm(question: string): Promise<boolean | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export async function runDestroyDroplets(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const clusterName = stringFlag(flags, 'cluster-name') ?? 'etcd';
  if (!/^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$/.test(clusterName)) throw usageError('validate', `cluster-name: ${JSON.stringify(clusterName)} is not a valid cluster name`);
  const dryRun = flags['dry-run'] === true;
  const json = flags.json === true;
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const vpcDeleteTimeoutMs = numberFlag(flags, 'wait-timeout', 120, (n) => n > 0 && n <= 3600, 'is not a number of seconds from 1 to 3600') * 1000;
  const outDir = join(context.cwd, stringFlag(flags, 'out') ?? 'out', clusterName);
  const domains = listFlag(flags, 'domain').map((d) => d.toLowerCase());
  const state = readState(outDir);
  const knownRecordNames = (state?.members ?? []).flatMap((m) => (typeof m.dropletName === 'string' ? [m.dropletName] : []));
  if (domains.length === 0) {
    if (state?.domain) domains.push(state.domain);
    else progress(`note: no --domain and no ${STATE_FILE} in ${outDir}: DNS records are not looked for; pass --domain to remove them`);
  }
  const client = api(context, progress, dryRun);
  const spec = { clusterName, domains, knownRecordNames, vpcDeleteTimeoutMs };
  const found = await findDropletCluster(client, spec).catch((error: unknown) => {
    throw error instanceof DigitalOceanApiError ? new CliError('api', error.message) : error;
  });
  const summary = {
    clusterName,
    tag: clusterTag(clusterName),
    droplets: found.droplets.map((d) => ({ id: d.id, name: d.name })),
    firewall: found.firewall ? { id: found.firewall.id, name: found.firewall.name } : null,
    dnsRecords: found.records.map(({ domain, record }) => ({ id: record.id, name: `${record.name}.${domain}`, data: record.data })),
    vpc: found.vpc ? { id: found.vpc.id, name: found.vpc.name } : null,
  };
  const nothing = !found.firewall && !found.vpc && found.droplets.length === 0 && found.records.length === 0;
  const listing = [
    `Cluster ${clusterName} (tag ${summary.tag}):`,
    `  droplets:    ${summary.droplets.map((d) => `${d.name} (${d.id})`).join(', ') || 'none'}`,
    `  DNS records: ${summary.dnsRecords.map((r) => `${r.name} -> ${r.data}`).join(', ') || 'none'}`,
    `  firewall:    ${summary.firewall ? `${summary.firewall.name} (${summary.firewall.id})` : 'none'}`,
    `  VPC:         ${summary.vpc ? `${summary.vpc.name} (${summary.vpc.id}, created by etcd-cloudinit)` : 'none created by etcd-cloudinit'}`,
  ].join('\n');
  if (nothing) {
    if (json) context.stdout.write(`${JSON.stringify({ dryRun, deleted: false, ...summary }, null, 2)}\n`);
    else context.stdout.write(`Nothing to destroy for cluster ${clusterName}: no droplet tagged ${summary.tag}, no firewall, DNS record or VPC of it.\n`);
    return 0;
  }
  progress(listing);
  if (!dryRun && flags.yes !== true) {
    const answer = await (context.confirm ?? ttyConfirm)(`Delete all of this? This cannot be undone. [y/N] `);
    if (answer === undefined) throw usageError('validate', 'yes: refusing to delete without confirmation; no terminal to ask on, so pass --yes');
    if (!answer) {
      context.stderr.write('Nothing deleted.\n');
      return EXIT_FAILURE;
    }
  }
  try {
    await destroyDropletCluster(client, spec, found, { progress, sleep, now: () => context.now().getTime() });
  } catch (error) {
    if (error instanceof DigitalOceanApiError) {
      throw new CliError('api', `${error.message}\nRe-run the same destroy-droplets command to finish: it finds what is left by tag and name.`);
    }
    throw error;
  }
  if (json) context.stdout.write(`${JSON.stringify({ dryRun, deleted: !dryRun, ...summary }, null, 2)}\n`);
  else context.stdout.write(dryRun ? `Dry run: nothing was deleted.\n` : `Destroyed cluster ${clusterName}. The local files in ${outDir} are kept (the CA key is there).\n`);
  return 0;
}
