import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CommandContext } from '../context.js';
import { CliError, usageError } from '../errors.js';
import type { ClientTls } from '../etcd/client.js';
import { resolveClusterInput, type ClusterInput } from '../input.js';
import type { OptionSpec, ParsedOptions } from '../options.js';
import type { KeyPairPem } from '../pki/mint.js';
import { planCluster, type ClusterPlan } from '../plan.js';
import { readExistingPki, withFolderLock } from '../write.js';

/** The options every day-2 command uses to find the folder gen-userdata wrote. */
export const FOLDER_OPTIONS: readonly OptionSpec[] = [
  { name: 'cluster-name', type: 'string', valueName: 'name', description: 'Cluster whose folder <out>/<cluster-name>/ to use (default etcd)' },
  { name: 'out', type: 'string', valueName: 'dir', description: 'Output folder gen-userdata wrote to (default out)' },
];

export const TIMEOUT_OPTION: OptionSpec = {
  name: 'timeout',
  type: 'string',
  valueName: 'seconds',
  description: 'Give up on a member that does not answer within this many seconds (default 5)',
};

/** cluster.json as gen-userdata and the day-2 commands write it (the fields day-2 reads). */
export interface ClusterRecord {
  readonly clusterName: string;
  readonly etcdVersion: string;
  /** plan.install as written; `mode` is absent in folders written before baked images existed (download). */
  readonly install:
    | { readonly mode?: 'download'; readonly releaseUrl: string; readonly sha256?: string }
    | { readonly mode: 'baked'; readonly version: string };
  readonly initialClusterToken: string;
  readonly keySize: number;
  readonly certDays: number;
  readonly raftTiming?: { readonly heartbeatIntervalMs?: number; readonly electionTimeoutMs?: number };
  readonly snapshots?: false | { readonly schedule: string; readonly retain: number };
  readonly members: readonly { readonly name: string; readonly ip: string }[];
}

/** A cluster folder, read and checked: what every day-2 command starts from. */
export interface ClusterFolder {
  readonly outDir: string;
  readonly out: string;
  readonly record: ClusterRecord;
  /** The plan of the current members, with the cluster's original initial-cluster-token. */
  readonly plan: ClusterPlan;
  readonly existingPki: ReadonlyMap<string, Partial<KeyPairPem>>;
  /** The admin certificate and CA, for talking to the cluster. */
  readonly adminTls: ClientTls;
}

export function parseTimeoutMs(flags: ParsedOptions): number {
  const raw = flags.timeout;
  if (raw === undefined) return 5000;
  const seconds = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!(seconds > 0 && seconds <= 600)) throw usageError('validate', `timeout: ${JSON.stringify(raw)} is not a number of seconds from 0 to 600`);
  return Math.round(seconds * 1000);
}

function requireFile(outDir: string, relative: string): string {
  const path = join(outDir, relative);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new CliError('parse', `${relative}: cannot read ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

/** `<out>/<cluster-name>/` as the folder options name it. */
function clusterFolderPath(flags: ParsedOptions, context: CommandContext): { clusterName: string; out: string; outDir: string } {
  const clusterName = typeof flags['cluster-name'] === 'string' ? flags['cluster-name'] : 'etcd';
  const out = typeof flags.out === 'string' ? flags.out : 'out';
  return { clusterName, out, outDir: resolve(context.cwd, out, clusterName) };
}

/** Runs a day-2 command that changes the folder while holding its lock (see withFolderLock). */
export function withClusterFolderLock<T>(flags: ParsedOptions, context: CommandContext, command: string, change: () => Promise<T>): Promise<T> {
  return withFolderLock(clusterFolderPath(flags, context).outDir, command, context.now(), change);
}

/** Reads `<out>/<cluster-name>/`: cluster.json, the CA and the admin pair must be there. */
export function loadClusterFolder(flags: ParsedOptions, context: CommandContext): ClusterFolder {
  const { clusterName, out, outDir } = clusterFolderPath(flags, context);
  if (!existsSync(join(outDir, 'cluster.json'))) {
    throw usageError('parse', `cluster-name: no cluster.json in ${JSON.stringify(outDir)}; run gen-userdata first, or pass --out/--cluster-name of an existing cluster`);
  }
  let document: unknown;
  try {
    document = JSON.parse(requireFile(outDir, 'cluster.json'));
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError('parse', `cluster.json: is not valid JSON: ${(error as Error).message}`);
  }
  const record = checkRecord(document);
  if (record.clusterName !== clusterName) {
    throw new CliError('parse', `cluster.json: clusterName is ${JSON.stringify(record.clusterName)}, but the folder is for ${JSON.stringify(clusterName)}`);
  }
  const plan = planFromRecord(record, record.members, out, context.cwd);
  const existingPki = readExistingPki(outDir);
  const pem = (base: string, kind: keyof KeyPairPem) => {
    const value = existingPki.get(base)?.[kind];
    if (!value) throw new CliError('parse', `pki/${base}.${kind === 'certPem' ? 'crt' : 'key'}: missing in ${outDir}`);
    return value;
  };
  return {
    outDir,
    out,
    record,
    plan,
    existingPki,
    adminTls: { caPem: pem('ca', 'certPem'), certPem: pem('admin', 'certPem'), keyPem: pem('admin', 'keyPem') },
  };
}

function checkRecord(document: unknown): ClusterRecord {
  const record = document as Partial<ClusterRecord> | null;
  const missing = (field: string) => new CliError('parse', `cluster.json: ${field} is missing or malformed; was it written by etcd-cloudinit?`);
  if (typeof record !== 'object' || record === null) throw missing('the document');
  if (typeof record.clusterName !== 'string') throw missing('clusterName');
  if (typeof record.etcdVersion !== 'string') throw missing('etcdVersion');
  const install = record.install as { mode?: unknown; releaseUrl?: unknown } | undefined;
  if (install?.mode !== 'baked' && typeof install?.releaseUrl !== 'string') throw missing('install.releaseUrl');
  if (typeof record.initialClusterToken !== 'string') throw missing('initialClusterToken');
  if (typeof record.keySize !== 'number') throw missing('keySize');
  if (typeof record.certDays !== 'number') throw missing('certDays');
  if (!Array.isArray(record.members) || record.members.some((member) => typeof member?.name !== 'string' || typeof member?.ip !== 'string')) {
    throw missing('members');
  }
  return record as ClusterRecord;
}

/** The input gen-userdata would have taken for these members; validated with the same schema and rules. */
export function inputFromRecord(record: ClusterRecord, members: ClusterRecord['members'], out: string): ClusterInput {
  const snapshots = record.snapshots;
  const raw: Record<string, unknown> = {
    'cluster-name': record.clusterName,
    members: members.map(({ name, ip }) => ({ name, ip })),
    out,
    'etcd-version': record.etcdVersion,
    // A member added to a baked cluster boots from the same image: its user-data checks, never downloads.
    ...(record.install.mode === 'baked'
      ? { install: 'baked' }
      : { 'release-url': record.install.releaseUrl, ...(record.install.sha256 ? { 'etcd-sha256': record.install.sha256 } : {}) }),
    'key-size': record.keySize,
    'cert-days': record.certDays,
    // A new member must use the cluster's raft timing.
    ...(record.raftTiming?.heartbeatIntervalMs !== undefined ? { 'heartbeat-interval': record.raftTiming.heartbeatIntervalMs } : {}),
    ...(record.raftTiming?.electionTimeoutMs !== undefined ? { 'election-timeout': record.raftTiming.electionTimeoutMs } : {}),
    // Growing 3 -> 4 -> 5 passes through even counts; add-member warns instead.
    'allow-even': true,
    snapshots: snapshots !== false,
    ...(snapshots ? { 'snapshot-schedule': snapshots.schedule, 'snapshot-retain': snapshots.retain } : {}),
  };
  try {
    return resolveClusterInput(raw, {}).input;
  } catch (error) {
    if (error instanceof CliError) throw new CliError('parse', `cluster.json: ${error.message.replace(/^\[\w+\] /, '')}`);
    throw error;
  }
}

/** A plan for these members that keeps the cluster's token (it names the cluster, not its membership). */
export function planFromRecord(record: ClusterRecord, members: ClusterRecord['members'], out: string, cwd: string): ClusterPlan {
  const plan = planCluster(inputFromRecord(record, members, out), cwd);
  return { ...plan, initialClusterToken: record.initialClusterToken };
}
