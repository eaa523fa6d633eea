import { FOLDER_FILES, type ClusterFolder } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_MEMBER_COUNT } from '../defaults.js';
import { dropletWaitOptions } from '../day2/droplets.js';
import { CliError, usageError } from '../errors.js';
import { backupCredentialsFor, folderOf, generateCluster, type GeneratedCluster } from '../generate.js';
import { flagsToRawInput, loadConfigFile, memberHostname, resolveClusterInput, type ClusterInput } from '../input.js';
import { healthCommand, printMemberOf } from './gen-userdata.js';
import { listFlag, numberFlag, stringFlag, type ParsedOptions } from '../options.js';
import { writeResult } from '../result.js';
import { CLIENT_PORT, METRICS_PORT, PEER_PORT, planCluster, type RestorePlan } from '../plan.js';
import { connectDigitalOcean } from '../digitalocean/connect.js';
import { DigitalOceanApiError } from '../digitalocean/errors.js';
import { createDropletCluster, PartialClusterError, type CreateResult, type DropletClusterSpec, type DropletMember } from '../digitalocean/cluster.js';
import { DEFAULT_IMAGE, DEFAULT_SIZE, DEFAULT_TTL, MAX_DROPLET_NAME, dropletNameOf } from '../digitalocean/members.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const IPV4_CIDR = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)\/(3[0-2]|[12]?\d)$/;
const IPV6_CIDR = /^[0-9a-f:]+:[0-9a-f:]*\/(12[0-8]|1[01]\d|\d?\d)$/i;

const endpointsOf = (result: CreateResult) => result.members.map((m) => `https://${m.hostname}:${CLIENT_PORT}`);

const ANY_SOURCE = new Set(['0.0.0.0/0', '::/0']);
// DigitalOcean tag names: letters, digits, colons, dashes and underscores, at most 255 characters.
const TAG_NAME = /^[A-Za-z0-9_:-]{1,255}$/;

/** One --trusted-source in its recorded form: a CIDR, tag:NAME or droplet:ID; undefined when it is none of them. */
export function trustedSourceOf(value: string): string | undefined {
  if (value.startsWith('tag:')) return TAG_NAME.test(value.slice(4)) ? value : undefined;
  if (value.startsWith('droplet:')) return /^[1-9]\d{0,15}$/.test(value.slice(8)) ? `droplet:${Number(value.slice(8))}` : undefined;
  if (IPV4_CIDR.test(value)) return value;
  if (IPV6_CIDR.test(value)) return value.toLowerCase();
  return undefined;
}

/**
 * --ssh-from and --trusted-source: undefined when not given (the record stands), [] for `none`.
 * The whole internet as a trusted source is refused without --allow-internet, and warned about with it.
 */
export function accessFlags(flags: ParsedOptions): { sshFrom: string[] | undefined; trustedSources: string[] | undefined; warnings: string[] } {
  const given = (name: 'ssh-from' | 'trusted-source') => {
    const values = listFlag(flags, name);
    if (values.length === 0) return undefined;
    if (values.includes('none')) {
      if (values.length > 1) throw usageError('validate', `${name}: "none" (no source at all) cannot be given with other sources: ${values.filter((v) => v !== 'none').join(', ')}`);
      return [];
    }
    return values;
  };
  const sshFrom = given('ssh-from');
  for (const [index, cidr] of (sshFrom ?? []).entries()) {
    if (!IPV4_CIDR.test(cidr) && !IPV6_CIDR.test(cidr)) throw usageError('validate', `ssh-from[${index}]: ${JSON.stringify(cidr)} is not a CIDR like 198.51.100.7/32 (or none, to close port 22)`);
  }
  const warnings: string[] = [];
  const trustedSources = given('trusted-source')?.map((value, index) => {
    const source = trustedSourceOf(value);
    if (source === undefined) {
      throw usageError('validate', `trusted-source[${index}]: ${JSON.stringify(value)} is not a CIDR like 203.0.113.7/32, tag:NAME or droplet:ID (or none, to trust no source outside the VPC)`);
    }
    if (ANY_SOURCE.has(source)) {
      if (flags['allow-internet'] !== true) {
        throw usageError('validate', `trusted-source[${index}]: ${source} opens etcd's client port to the whole internet; name your own addresses, or add --allow-internet if that is what you mean`);
      }
      warnings.push(`--trusted-source ${source}: every address on the internet may reach port ${CLIENT_PORT}; only a client certificate of this cluster's CA gets past TLS`);
    }
    return source;
  });
  if (flags['allow-internet'] === true && !(trustedSources ?? []).some((s) => ANY_SOURCE.has(s))) {
    throw usageError('validate', 'allow-internet: only goes with --trusted-source 0.0.0.0/0 or ::/0');
  }
  return { sshFrom, trustedSources: trustedSources ? [...new Set(trustedSources)] : undefined, warnings };
}

/** validate: the flags of create-droplets (over --config, as gen-userdata reads it) into the cluster input (DNS-member mode) and the droplet spec. */
export function validateCreateFlags(flags: ParsedOptions, cwd: string): { input: ClusterInput; spec: DropletClusterSpec; warnings: readonly string[] } {
  const fileInput = typeof flags.config === 'string' ? loadConfigFile(flags.config, cwd) : {};
  const domain = stringFlag(flags, 'domain') ?? (typeof fileInput.domain === 'string' ? fileInput.domain.trim() : undefined);
  if (!domain) throw usageError('validate', 'domain: is required: the DigitalOcean DNS zone the member names live in (--domain example.com)');
  const region = stringFlag(flags, 'region');
  if (!region) throw usageError('validate', 'region: is required, e.g. --region nyc3');
  if (!/^[a-z]{3}\d$/.test(region)) throw usageError('validate', `region: ${JSON.stringify(region)} is not a region slug like nyc3`);
  if (flags.names !== undefined && flags.count !== undefined) throw usageError('validate', 'count: give --names or --count, not both');
  const count = numberFlag(flags, 'count', DEFAULT_MEMBER_COUNT, (n) => Number.isInteger(n) && n >= 1 && n <= 9, 'is not a member count from 1 to 9');
  const raw = flagsToRawInput(flags);
  // restore --region passes gen-userdata's flags on: droplets read their address from DigitalOcean's metadata.
  for (const key of ['listen-from', 'listen-cidr'] as const) {
    if (raw[key] !== undefined && raw[key] !== 'do-metadata') {
      throw usageError('validate', `${key}: ${JSON.stringify(raw[key])} is not for droplets: create-droplets members read their address from DigitalOcean's metadata service`);
    }
  }
  raw.domain = domain.toLowerCase();
  // --count names the members etcd1..etcdN; a config's names stand unless --count or --names is given.
  if (flags.count !== undefined || (raw.names === undefined && fileInput.names === undefined)) raw.names ??= Array.from({ length: count }, (_, index) => `etcd${index + 1}`);
  // The bucket is usually a Space in the droplets' own region.
  if (raw['backup-url'] !== undefined && raw['backup-region'] === undefined) raw['backup-region'] = region;
  const { input, warnings } = resolveClusterInput(fileInput, raw);

  const members: DropletMember[] = input.members.map((member, index) => {
    const dropletName = dropletNameOf(input.clusterName, member.name);
    if (dropletName.length > MAX_DROPLET_NAME) {
      throw usageError('validate', `names[${index}]: droplet name ${JSON.stringify(dropletName)} (<cluster-name>-<member>) is longer than ${MAX_DROPLET_NAME} characters; use shorter names`);
    }
    return { name: member.name, dropletName, hostname: member.hostname ?? memberHostname(input.clusterName, member.name, domain) };
  });

  const { sshFrom, trustedSources, warnings: accessWarnings } = accessFlags(flags);
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
    warnings: [...warnings, ...accessWarnings],
    spec: {
      clusterName: input.clusterName,
      domain: domain.toLowerCase(),
      region,
      size: stringFlag(flags, 'size') ?? DEFAULT_SIZE,
      image,
      sshKeys,
      sshFrom,
      trustedSources,
      dropHandAddedRules: flags['drop-hand-added-rules'] === true,
      vpcUuid,
      vpcRange,
      ttl,
      metrics: input.metrics,
      members,
    },
  };
}

function renderCreateSummary(result: CreateResult, folder: ClusterFolder, metrics: boolean): string {
  const width = Math.max(...result.members.map((m) => m.name.length)) + 2;
  const lines = [
    `Cluster ${result.clusterName} on DigitalOcean: ${result.members.length} droplet(s) in ${result.region}, VPC ${result.vpc.name} (${result.vpc.ipRange ?? '?'}), tag ${result.tag}`,
    ...result.members.map(
      (m) =>
        `  ${m.name.padEnd(width)}droplet ${m.dropletId} (${m.droplet})  ${m.hostname} -> ${m.privateIpv4}${m.publicIpv4 ? `  public ${m.publicIpv4}` : ''}  DNS ${m.dnsRecord}`,
    ),
    `  firewall ${result.firewall.name} (${result.firewall.outcome}): ${CLIENT_PORT}-${PEER_PORT}${metrics ? ` and ${METRICS_PORT}` : ''} from the tag and the VPC; ${CLIENT_PORT} from ${result.firewall.access.trustedSources.join(', ') || 'no trusted source'}; 22 from ${result.firewall.access.sshFrom.join(', ') || 'nowhere'}`,
    `Endpoints: ${endpointsOf(result).join(',')}`,
    `State: ${folder.shownFile(FOLDER_FILES.digitaloceanJson)}`,
    '',
    'etcd starts when cloud-init has installed it and the names resolve (a few minutes). The names',
    `resolve to private addresses and only the VPC may reach ports ${CLIENT_PORT}-${PEER_PORT}, so check from a machine`,
    `in the VPC that has ${folder.shown}/ at the same path:`,
    `  ${healthCommand(folder)}`,
    "A member that never answers may have failed to boot: in its droplet's Droplet Console (control panel,",
    "Droplets > <droplet> > Access), 'cloud-init status --long' and 'systemctl --failed' name the failed step.",
    '',
  ];
  return lines.join('\n');
}

/** `restore`: the members' user-data restores this snapshot at first boot (restore --domain --region). */
export async function runCreateDroplets(flags: ParsedOptions, context: CommandContext, restore?: RestorePlan): Promise<number> {
  const { input, spec, warnings } = validateCreateFlags(flags, context.cwd);
  for (const warning of warnings) context.stderr.write(`warning: ${warning}\n`);
  const printMember = printMemberOf(flags, input, context);
  const folder = folderOf(input, context.cwd);
  backupCredentialsFor(input, context.env, folder); // before any API call: a missing key pair is a usage error
  // A re-run without --ssh-from or --trusted-source keeps what the last run recorded.
  const recordedAccess = folder.exists(FOLDER_FILES.digitaloceanJson) ? folder.readDigitalOceanState()?.access : undefined;
  const dryRun = flags['dry-run'] === true;
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const { waitTimeoutMs, pollIntervalMs } = dropletWaitOptions(flags);
  const client = connectDigitalOcean(context.env, progress, dryRun);
  if (typeof spec.image === 'number' && input.install !== 'baked') {
    progress('note: --image is a snapshot id; if it was baked with packer/ (docs/packer.md), add --install baked so nodes skip the download');
  }
  if (spec.sshKeys.length === 0) progress('note: no --ssh-key: the droplets get no SSH key (DigitalOcean then emails a root password)');

  // plan -> mint -> render -> write: the same user-data gen-userdata --domain writes for these members.
  // Only once the API has accepted the token and the domain, and only if a droplet is missing.
  let generated: Promise<GeneratedCluster> | undefined;
  const now = context.now();
  const plan = planCluster(input, folder.dir);
  const userDataOf = async (member: DropletMember) => {
    if (!generated) {
      generated = generateCluster(input, folder, context, now, flags.force === true, restore);
      await generated;
      progress(`pki: wrote ${folder.shown}/ (CA, member and admin certificates, user-data; the CA key stays there)`);
    }
    return (await generated).userData.get(member.name)!;
  };
  // Resuming adds members to a cluster that already booted: they must share its CA and its
  // initial-cluster, or they can never join. Both live in out/<cluster>/. Called whenever droplets exist.
  const checkResume = (existing: readonly DropletMember[], missing: readonly DropletMember[]) => {
    const names = (list: readonly DropletMember[]) => list.map((m) => m.dropletName).join(', ');
    if (!folder.exists(FOLDER_FILES.key('ca'))) {
      throw new CliError(
        'preflight',
        `droplets ${names(existing)} of cluster ${spec.clusterName} exist, but ${folder.shownFile(FOLDER_FILES.key('ca'))} does not: new members would get another CA and never join. Run from the folder that holds ${folder.shown}/ (or --out), or destroy the cluster and create it again`,
      );
    }
    const before = folder.exists(FOLDER_FILES.clusterJson) ? folder.readClusterRecord() : undefined;
    // A restore makes a new cluster: droplets that exist belong to the old one, unless this same restore made them (a resume).
    if (restore && before?.restoredFrom?.sha256 !== restore.sha256) {
      throw new CliError(
        'preflight',
        `droplets ${names(existing)} of cluster ${spec.clusterName} exist: a restore makes a new cluster and would leave them running with their own data. ` +
          `Delete them first (etcd-cloudinit destroy-droplets --cluster-name ${spec.clusterName}), or restore under another --cluster-name`,
      );
    }
    if (missing.length === 0) return; // nothing to create: re-running on a complete cluster changes nothing
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
      result = await createDropletCluster(client, { ...spec, recordedAccess }, {
        progress,
        sleep,
        now: () => context.now().getTime(),
        waitTimeoutMs,
        pollIntervalMs,
        userData: userDataOf,
        checkResume,
        userDataPath: (member) => folder.shownFile(FOLDER_FILES.userData(member.name)),
      });
    } catch (error) {
      throw toCreateError(error, spec, flags);
    }

    if (!dryRun) {
      folder.writeDigitalOceanState({
        clusterName: result.clusterName,
        region: result.region,
        domain: result.domain,
        tag: result.tag,
        vpc: result.vpc,
        firewall: { id: result.firewall.id, name: result.firewall.name },
        access: result.firewall.access,
        // What add-member creates its droplets with.
        droplet: { size: spec.size, image: spec.image, sshKeys: [...spec.sshKeys], ttl: spec.ttl },
        members: result.members.map(({ name, dropletName, hostname, dropletId, privateIpv4, publicIpv4 }) => ({
          name,
          dropletName,
          hostname,
          ...(dropletId !== undefined ? { dropletId } : {}),
          ...(privateIpv4 !== undefined ? { privateIpv4 } : {}),
          ...(publicIpv4 !== undefined ? { publicIpv4 } : {}),
        })),
        updatedAt: now.toISOString(),
      });
    }
    return result;
  };
  // The API calls can take minutes: the folder stays locked until the state file is written.
  const result = dryRun ? await createAndRecord() : await folder.withLock('create-droplets', now, createAndRecord);

  if (printMember !== undefined) {
    // As gen-userdata --print: the summary to stderr, the member's user-data (this run's, or the folder's on a re-run) to stdout.
    context.stderr.write(renderCreateSummary(result, folder, spec.metrics));
    context.stdout.write(generated ? (await generated).userData.get(printMember)! : folder.readUserData(printMember));
    return 0;
  }
  writeResult(context, { dryRun, ...result, endpoints: endpointsOf(result), etcdctlEnv: folder.shownFile(FOLDER_FILES.etcdctlEnv) }, () =>
    dryRun ? `Dry run: ${result.plannedCalls.length} call(s) would change something (listed above); nothing was changed or written.\n` : renderCreateSummary(result, folder, spec.metrics),
  );
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
