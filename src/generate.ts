import { ClusterFolder, FOLDER_FILES, type ClusterRecord } from './cluster-folder.js';
import { mintSources, type CommandContext } from './context.js';
import { CliError } from './errors.js';
import { credentialsFor } from './bucket-access.js';
import type { BackupCredentials } from './backup/target.js';
import type { ClusterInput } from './input.js';
import { outputFiles } from './output.js';
import { mintPki, type ClusterPki } from './pki/mint.js';
import { clusterToken, planCluster, type ClusterPlan, type RestorePlan } from './plan.js';
import { retiredMembersAfter } from './record-codec.js';
import { renderUserData } from './render.js';
import { crashAtStep } from './write.js';

export interface GeneratedCluster {
  readonly input: ClusterInput;
  readonly plan: ClusterPlan;
  readonly pki: ClusterPki;
  /** By member name. */
  readonly userData: ReadonlyMap<string, string>;
}

/** The folder a validated input writes to. */
export function folderOf(input: ClusterInput, cwd: string): ClusterFolder {
  return new ClusterFolder(input.out, input.clusterName, cwd);
}

/** The existing cluster.json, or undefined when there is none or it is not ours to judge (the write replaces it). */
export function existingRecord(folder: ClusterFolder): ClusterRecord | undefined {
  if (!folder.exists(FOLDER_FILES.clusterJson)) return undefined;
  try {
    return folder.readClusterRecord();
  } catch (error) {
    if (error instanceof CliError) return undefined;
    throw error;
  }
}

/**
 * A folder whose membership add-member or remove-member changed describes a running cluster that
 * was bootstrapped with other members. gen-userdata writes files that bootstrap a new cluster
 * (initial-cluster-state: new) for exactly the members it is given, so re-running it there would
 * replace the joined members' user-data and drop the certificates of members it is not given.
 * It refuses unless --force. Day-2 commands keep the bootstrap token while initial-cluster follows
 * the members, so the two disagree exactly when membership has changed since bootstrap.
 */
function checkNoDay2Changes(folder: ClusterFolder, force: boolean, plan: ClusterPlan): void {
  if (force) return;
  const record = existingRecord(folder);
  // restore makes a new cluster on purpose: it replaces the folder's (the CA is kept).
  if (plan.restore || !record?.initialCluster || record.initialClusterToken === clusterToken(record.clusterName, record.initialCluster)) return;
  if (record.restoredFrom) {
    throw new CliError(
      'plan',
      `${folder.dir} holds a cluster that restore made from ${record.restoredFrom.source}. gen-userdata would write user-data that bootstraps a new, empty cluster in its place. ` +
        'Manage this cluster with the day-2 commands (docs/day2.md), run restore again to restore it anew, or pass --force to start its files over (the CA is kept).',
    );
  }
  const members = record.members.map((member) => `${member.name} (${member.ip ?? member.hostname})`).join(', ');
  throw new CliError(
    'plan',
    `${folder.dir} was changed by add-member/remove-member since the cluster was bootstrapped (members now: ${members}). ` +
      'gen-userdata writes user-data that bootstraps a new cluster, and would replace what the day-2 commands wrote. ' +
      'Manage this cluster with add-member, remove-member and renew-certs (docs/day2.md), or pass --force to start its files over (the CA is kept).',
  );
}

/**
 * The bucket key pair for --backup-url: from SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY, or
 * (a re-run) the copy the folder keeps. Undefined without --backup-url; a usage error when none is known.
 */
export function backupCredentialsFor(input: ClusterInput, env: NodeJS.ProcessEnv, folder: ClusterFolder): BackupCredentials | undefined {
  return input.backup ? credentialsFor(input.backup, env, folder) : undefined;
}

/**
 * A plan whose members restore a snapshot at first boot. Its token is new, so the cluster ID is
 * too, even with the same name and addresses as the cluster the snapshot came from.
 */
export function withRestore(plan: ClusterPlan, restore: RestorePlan | undefined): ClusterPlan {
  if (!restore) return plan;
  const restoredFrom = { source: restore.source, sha256: restore.sha256, revision: restore.revision };
  return { ...plan, restore, restoredFrom, initialClusterToken: clusterToken(plan.clusterName, `${plan.initialCluster}\nrestored from ${restore.source} ${restore.sha256}`) };
}

/**
 * The kept CA still vouches for every member certificate it signed: the members the folder had (and
 * those that had left it) stay retired names, so add-member never hands one out again (day2/names.ts).
 */
function withNameHistory(plan: ClusterPlan, folder: ClusterFolder, caKept: boolean): ClusterPlan {
  const record = caKept ? existingRecord(folder) : undefined;
  const retiredMembers = record ? retiredMembersAfter(record, plan.members) : [];
  return retiredMembers.length > 0 ? { ...plan, retiredMembers } : plan;
}

/** plan -> mint -> render -> check -> write, for a validated input. The caller holds the folder's lock. */
export async function generateCluster(
  input: ClusterInput,
  folder: ClusterFolder,
  context: CommandContext,
  now: Date,
  force: boolean,
  restore?: RestorePlan,
): Promise<GeneratedCluster> {
  const backupCredentials = backupCredentialsFor(input, context.env, folder);
  const planned = withRestore(planCluster(backupCredentials ? { ...input, backupCredentials } : input, folder.dir), restore);
  checkNoDay2Changes(folder, force, planned);
  const pki = await mintPki(planned, {
    now,
    existing: folder.readPki(),
    force,
    ...mintSources(context),
  });
  const plan = withNameHistory(planned, folder, pki.ca.reused);
  const userData = new Map(plan.members.map((member) => [member.name, renderUserData(plan, pki, member.name)]));
  folder.writeAll(outputFiles(plan, pki, userData, now), crashAtStep(context.env, context.stderr));
  return { input, plan, pki, userData };
}
