import { ClusterFolder, type ClusterRecord, type DigitalOceanState } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_CLUSTER_NAME, DEFAULT_OUT, DEFAULT_TIMEOUT_SECONDS } from '../defaults.js';
import { rollInProgressError } from '../errors.js';
import type { ClientTls } from '../etcd/client.js';
import type { ClusterInput } from '../input.js';
import { secondsFlagMs, type ParsedOptions } from '../options.js';
import type { KeyPairPem } from '../pki/mint.js';
import { planCluster, type ClusterPlan } from '../plan.js';
import { inputFromRecord, retiredMembersAfter } from '../record-codec.js';

export function parseTimeoutMs(flags: ParsedOptions): number {
  return secondsFlagMs(flags, 'timeout', DEFAULT_TIMEOUT_SECONDS, 600, 'is not a number of seconds above 0 and at most 600');
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
  /** cluster.json as planning input (record-codec.ts): commands change it, then plan it with planOf. */
  readonly input: ClusterInput;
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
  const input = inputFromRecord(record, folder.out);
  const pki = folder.readPki();
  return {
    folder,
    record,
    input,
    plan: planOf({ folder, record }, input),
    pki,
    adminTls: folder.adminTls(pki),
    digitalocean: folder.readDigitalOceanState(),
  };
}

/** Membership and certificates belong to a roll or repair until it ends: other day-2 commands wait for it. */
export function refuseDuringReplacement(folder: ClusterFolder, command: string): void {
  const current = folder.readRollState()?.current;
  if (!current) return;
  throw rollInProgressError(folder.clusterName, current, `run '${current.operation}' again to finish it before ${command}`);
}

/**
 * A plan of this input (the cluster's, changed as a command needs) that keeps the cluster's token and
 * the snapshot it started from, and records a member the input drops as retired (no name is reused).
 */
export function planOf(cluster: Pick<OpenCluster, 'folder' | 'record'>, input: ClusterInput): ClusterPlan {
  // The key pair gen-userdata stored; rendering a member's user-data fails with a clear message without it.
  const backupCredentials = input.backup ? cluster.folder.readBackupCredentials() : undefined;
  const plan = planCluster(backupCredentials ? { ...input, backupCredentials } : input, cluster.folder.dir);
  const retiredMembers = retiredMembersAfter(cluster.record, plan.members);
  return { ...plan, initialClusterToken: cluster.record.initialClusterToken, restoredFrom: cluster.record.restoredFrom, ...(retiredMembers.length > 0 ? { retiredMembers } : {}) };
}
