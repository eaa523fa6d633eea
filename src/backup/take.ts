/**
 * A snapshot taken now, from the workstation: stream it from a healthy member over the client
 * connection (etcd's maintenance Snapshot API: nothing runs on the node), check the SHA-256 etcd
 * appends, then upload it to the cluster's bucket as the nodes do (name, x-amz-meta-*, retention),
 * or, on a cluster without a bucket, keep it in the folder (backups/, 0600: it holds every key).
 * `create-backup` and roll's pre-roll backup both run this.
 */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { credentialsFor } from '../bucket-access.js';
import { FOLDER_FILES } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import type { OpenCluster } from '../day2/open-cluster.js';
import { checkMembers } from '../day2/health.js';
import { CliError } from '../errors.js';
import { memberStatus, snapshotStream, type ClientOptions } from '../etcd/client.js';
import { SnapshotChecker, snapshotFileName, snapshotStamp } from './snapshot.js';
import { backupUrlOf } from './target.js';

/** Where the snapshot went: an object in the cluster's bucket, or a file in the folder. */
export type BackupPlace =
  | { readonly kind: 'bucket'; readonly url: string; readonly endpoint: string; readonly key: string; readonly pruned: readonly string[] }
  | { readonly kind: 'file'; readonly path: string };

export interface BackupTaken {
  readonly member: string;
  readonly endpoint: string;
  /** The member's revision when the stream began: the snapshot holds it and every revision before it. */
  readonly revision: number;
  /** The snapshot's time (UTC), as its name stamps it. */
  readonly time: string;
  readonly size: number;
  /** SHA-256 of the whole file, as the bucket's x-amz-meta-sha256 records it (the nodes' sha256sum). */
  readonly sha256: string;
  readonly place: BackupPlace;
}

export interface TakeOptions {
  /** For the member checks (health, status): the command's per-call --timeout. */
  readonly client: ClientOptions;
  /** Bounds the snapshot stream, and each S3 request. */
  readonly streamTimeoutMs: number;
  readonly env: CommandContext['env'];
  readonly now: () => Date;
  readonly progress: (line: string) => void;
}

/** The bucket or the folder, as the cluster's record names it: what a dry run shows and a run uses. */
export function backupDestination(cluster: OpenCluster): string {
  const backup = cluster.plan.backup;
  return backup ? `${backupUrlOf(backup)} at ${backup.endpoint} (keeps the newest ${backup.retain})` : `${cluster.folder.shownFile(FOLDER_FILES.backupsDir)}/ (the cluster has no bucket: gen-userdata --backup-url)`;
}

/** The healthy voting member to stream from: a follower first (the leader has the cluster's work to do). */
export async function chooseSnapshotMember(cluster: OpenCluster, client: ClientOptions, now: Date): Promise<{ name: string; endpoint: string }> {
  const health = await checkMembers(cluster.plan, client, now);
  const healthy = health.filter((member) => member.healthy && !member.learner);
  if (healthy.length === 0) {
    throw new CliError('preflight', `no healthy member to take a snapshot from (${health.map((member) => `${member.name}: ${member.error ?? 'not healthy'}`).join('; ')}); run health`);
  }
  const chosen = healthy.find((member) => !member.leader) ?? healthy[0]!;
  return { name: chosen.name, endpoint: chosen.endpoint };
}

export async function takeBackup(cluster: OpenCluster, options: TakeOptions): Promise<BackupTaken> {
  const { folder, plan } = cluster;
  const backup = plan.backup;
  // The key pair first: a cluster whose bucket cannot be reached gets no stream it cannot store.
  const credentials = backup ? credentialsFor(backup, options.env as NodeJS.ProcessEnv, folder) : undefined;
  const source = await chooseSnapshotMember(cluster, options.client, options.now());
  const status = await memberStatus(source.endpoint, options.client);
  const revision = Number(status.header?.revision ?? NaN);
  if (!Number.isSafeInteger(revision) || revision < 0) throw new CliError('api', `${source.name} (${source.endpoint}) gave no revision in its status`);
  const taken = options.now();
  const name = snapshotFileName(snapshotStamp(taken), source.name, revision);

  // Streamed to a private file in the folder, never whole in memory: a database can be gigabytes.
  const dir = folder.path(FOLDER_FILES.backupsDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const final = folder.path(FOLDER_FILES.backup(name));
  const partial = `${final}.partial-${process.pid}`;
  const checker = new SnapshotChecker();
  let fd: number | undefined = openSync(partial, 'wx', 0o600);
  try {
    options.progress(`streaming a snapshot from ${source.name} (${source.endpoint}, revision ${revision})`);
    try {
      await snapshotStream(source.endpoint, { ...options.client, timeoutMs: options.streamTimeoutMs }, (blob) => {
        checker.update(blob);
        writeSync(fd!, blob);
      });
    } catch (error) {
      throw new CliError('api', `cannot take a snapshot from ${source.name} (${source.endpoint}): ${(error as Error).message}`);
    }
    closeSync(fd);
    fd = undefined;
    const checked = checker.finish();
    if (!checked.ok) throw new CliError('check', `the snapshot from ${source.name} is refused: ${checked.problem}; nothing was stored`);
    const common = { member: source.name, endpoint: source.endpoint, revision, time: taken.toISOString().replace(/\.\d{3}Z$/, 'Z'), size: checked.size, sha256: checked.sha256 };

    if (!backup || !credentials) {
      renameSync(partial, final);
      return { ...common, place: { kind: 'file', path: folder.shownFile(FOLDER_FILES.backup(name)) } };
    }
    const { openStore, uploadSnapshot, pruneSnapshots } = await import('./store.js');
    const store = openStore(backup, credentials, options.streamTimeoutMs);
    try {
      const key = `${backup.prefix}${name}`;
      await uploadSnapshot(store, { key, file: partial, size: checked.size, sha256: checked.sha256, member: source.name, revision });
      const pruned = await pruneSnapshots(store, backup.retain);
      return { ...common, place: { kind: 'bucket', url: backupUrlOf(backup), endpoint: backup.endpoint, key, pruned } };
    } finally {
      store.client.destroy();
      rmSync(partial, { force: true });
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
    rmSync(partial, { force: true });
  }
}

/** `s3://<bucket>/<key>`, or the file as the folder shows it. */
export function backupLocation(taken: BackupTaken): string {
  return taken.place.kind === 'bucket' ? `s3://${new URL(taken.place.url).host}/${taken.place.key}` : taken.place.path;
}

/** One line: what was taken and where it is. */
export function describeBackup(taken: BackupTaken): string {
  const where = backupLocation(taken);
  const pruned = taken.place.kind === 'bucket' && taken.place.pruned.length > 0 ? `; pruned ${taken.place.pruned.length} older (${taken.place.pruned.join(', ')})` : '';
  const privateNote = taken.place.kind === 'file' ? ' (0600: a snapshot holds every key)' : '';
  return `snapshot of ${taken.member} at revision ${taken.revision} (${taken.size} bytes, sha256 ${taken.sha256}) saved to ${where}${privateNote}${pruned}`;
}
