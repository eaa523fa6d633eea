import { ClusterFolder, recordKeyType, type ClusterRecord, type DigitalOceanState, type MemberRecord } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_CLUSTER_NAME, DEFAULT_OUT, DEFAULT_TIMEOUT_SECONDS } from '../defaults.js';
import { CliError } from '../errors.js';
import type { ClientTls } from '../etcd/client.js';
import { resolveClusterInput, type ClusterInput } from '../input.js';
import { secondsFlagMs, type ParsedOptions } from '../options.js';
import type { KeyPairPem } from '../pki/mint.js';
import { planCluster, type ClusterPlan } from '../plan.js';

export function parseTimeoutMs(flags: ParsedOptions): number {
  return secondsFlagMs(flags, 'timeout', DEFAULT_TIMEOUT_SECONDS, 600, 'is not a number of seconds from 0 to 600');
}

/** `<out>/<cluster-name>/` as --out and --cluster-name name it. */
export function folderFromFlags(flags: ParsedOptions, context: CommandContext): ClusterFolder {
  const clusterName = typeof flags['cluster-name'] === 'string' ? flags['cluster-name'] : DEFAULT_CLUSTER_NAME;
  const out = typeof flags.out === 'string' ? flags.out : DEFAULT_OUT;
  return new ClusterFolder(out, clusterName, context.cwd);
}

/** A cluster folder, read and checked: what every day-2 command starts from. */
export interface OpenCluster {
  readonly folder: ClusterFolder;
  readonly record: ClusterRecord;
  /** The plan of the current members, with the cluster's original initial-cluster-token. */
  readonly plan: ClusterPlan;
  readonly pki: ReadonlyMap<string, Partial<KeyPairPem>>;
  /** The admin certificate and CA, for talking to the cluster. */
  readonly adminTls: ClientTls;
  /** Set when create-droplets made the cluster: day-2 commands then do DigitalOcean's part too. */
  readonly digitalocean: DigitalOceanState | undefined;
}

/** Reads the folder: cluster.json, digitalocean.json if any, the CA and the admin pair. */
export function openCluster(folder: ClusterFolder): OpenCluster {
  const record = folder.readClusterRecord();
  const pki = folder.readPki();
  return {
    folder,
    record,
    plan: planFromRecord(record, record.members, folder),
    pki,
    adminTls: folder.adminTls(pki),
    digitalocean: folder.readDigitalOceanState(),
  };
}

/** Membership and certificates belong to a roll or repair until it ends: other day-2 commands wait for it. */
export function refuseDuringReplacement(folder: ClusterFolder, command: string): void {
  const current = folder.readRollState()?.current;
  if (!current) return;
  throw new CliError('preflight', `a ${current.operation} of cluster ${folder.clusterName} is in progress (started ${current.startedAt}); run '${current.operation}' again to finish it before ${command}`);
}

/** The input gen-userdata would have taken for these members; validated with the same schema and rules. */
export function inputFromRecord(record: ClusterRecord, members: readonly MemberRecord[], out: string): ClusterInput {
  try {
    return { ...resolveClusterInput(rawInputFromRecord(record, members, out), {}).input, domain: record.domain };
  } catch (error) {
    if (error instanceof CliError) throw new CliError('parse', `cluster.json: ${error.message.replace(/^\[\w+\] /, '')}`);
    throw error;
  }
}

/** cluster.json as gen-userdata's raw input (option names as keys), unvalidated. */
export function rawInputFromRecord(record: ClusterRecord, members: readonly MemberRecord[], out: string): Record<string, unknown> {
  const snapshots = record.snapshots;
  const byName = members.every((member) => member.hostname !== undefined);
  const raw: Record<string, unknown> = {
    'cluster-name': record.clusterName,
    // DNS-member mode: each member's own name (a --domain cluster's derived ones included).
    ...(byName ? { hostnames: members.map((member) => member.hostname), names: members.map((member) => member.name) } : { members: members.map(({ name, ip }) => ({ name, ip })) }),
    out,
    'etcd-version': record.etcdVersion,
    // A member added to a baked cluster boots from the same image: its user-data checks, never downloads.
    ...(record.install.mode === 'baked'
      ? { install: 'baked' }
      : { 'release-url': record.install.releaseUrl, ...(record.install.sha256 ? { 'etcd-sha256': record.install.sha256 } : {}) }),
    // key-size is for RSA keys only: an ECDSA cluster's record keeps the default, which is no choice.
    'key-type': recordKeyType(record),
    ...(recordKeyType(record) === 'rsa' ? { 'key-size': record.keySize } : {}),
    'cert-days': record.certDays,
    // A new member must use the cluster's raft timing.
    ...(record.raftTiming?.heartbeatIntervalMs !== undefined ? { 'heartbeat-interval': record.raftTiming.heartbeatIntervalMs } : {}),
    ...(record.raftTiming?.electionTimeoutMs !== undefined ? { 'election-timeout': record.raftTiming.electionTimeoutMs } : {}),
    // Growing 3 -> 4 -> 5 passes through even counts; add-member warns instead.
    'allow-even': true,
    snapshots: snapshots !== false,
    ...(snapshots ? { 'snapshot-schedule': snapshots.schedule, 'snapshot-retain': snapshots.retain } : {}),
    // Members of a cluster made before metrics existed have none: a member added or rolled in matches them.
    metrics: record.metrics ?? false,
    // Members added later find their address the way the first ones did.
    ...(byName && record.listenFrom ? { 'listen-from': record.listenFrom.from, ...(record.listenFrom.from === 'cidr' ? { 'listen-cidr': record.listenFrom.cidr } : {}) } : {}),
    // A restored cluster's members joined later start empty and sync from their peers: no restoredFrom here.
    ...(record.backup
      ? { 'backup-url': record.backup.url, 'backup-endpoint': record.backup.endpoint, 'backup-region': record.backup.region, 'backup-retain': record.backup.retain }
      : {}),
    // Older folders have neither: no client certificates.
    ...(record.clients?.some((client) => client.name !== record.kubernetes?.client)
      ? { client: record.clients.filter((client) => client.name !== record.kubernetes?.client).map((client) => client.name) }
      : {}),
    ...(record.kubernetes ? { kubernetes: true, 'k8s-pki-dir': record.kubernetes.pkiDir } : {}),
  };
  if (!byName && members.some((member) => member.ip === undefined)) {
    throw new CliError('parse', 'cluster.json: members mixes addresses and DNS names; was it written by etcd-cloudinit?');
  }
  return raw;
}

/** A plan for these members that keeps the cluster's token (it names the cluster, not its membership). */
export function planFromRecord(record: ClusterRecord, members: readonly MemberRecord[], folder: ClusterFolder): ClusterPlan {
  const input = inputFromRecord(record, members, folder.out);
  // The key pair gen-userdata stored; rendering a member's user-data fails with a clear message without it.
  const backupCredentials = input.backup ? folder.readBackupCredentials() : undefined;
  const plan = planCluster(backupCredentials ? { ...input, backupCredentials } : input, folder.dir);
  return { ...plan, initialClusterToken: record.initialClusterToken, restoredFrom: record.restoredFrom };
}
