import { backupDestination, chooseSnapshotMember, describeBackup, takeBackup, type BackupTaken } from '../backup/take.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_BACKUP_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS } from '../defaults.js';
import { folderFromFlags, openCluster, type OpenCluster } from '../day2/open-cluster.js';
import { secondsFlagMs, type ParsedOptions } from '../options.js';
import { writeResult } from '../result.js';
import { backupUrlOf } from '../backup/target.js';

/** create-backup --json (schema/output/create-backup.schema.json). */
interface CreateBackupDocument {
  readonly dryRun: boolean;
  readonly clusterName: string;
  readonly member: { readonly name: string; readonly endpoint: string };
  /** Absent in a dry run: nothing was taken. */
  readonly snapshot: { readonly revision: number; readonly time: string; readonly size: number; readonly sha256: string } | null;
  /** The cluster's bucket; null on a cluster without one. `key` is null in a dry run. */
  readonly bucket: { readonly url: string; readonly endpoint: string; readonly key: string | null; readonly pruned: readonly string[] } | null;
  /** The snapshot's file in the folder, on a cluster without a bucket (null in a dry run, or with a bucket). */
  readonly file: string | null;
}

function document(cluster: OpenCluster, member: { name: string; endpoint: string }, taken: BackupTaken | undefined): CreateBackupDocument {
  const backup = cluster.plan.backup;
  const place = taken?.place;
  return {
    dryRun: taken === undefined,
    clusterName: cluster.record.clusterName,
    member,
    snapshot: taken ? { revision: taken.revision, time: taken.time, size: taken.size, sha256: taken.sha256 } : null,
    bucket: backup ? { url: backupUrlOf(backup), endpoint: backup.endpoint, key: place?.kind === 'bucket' ? place.key : null, pruned: place?.kind === 'bucket' ? [...place.pruned] : [] } : null,
    file: place?.kind === 'file' ? place.path : null,
  };
}

/**
 * create-backup: choose a healthy member -> stream its snapshot -> check etcd's SHA-256 -> upload
 * to the cluster's bucket and prune to its retention (or keep it in the folder). Holds the
 * folder's lock, so no add-member, roll or repair changes the members meanwhile.
 */
export function runCreateBackup(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const streamTimeoutMs = secondsFlagMs(flags, 'timeout', DEFAULT_BACKUP_TIMEOUT_SECONDS, 3600, 'is not a number of seconds above 0 and at most 3600');
  const folder = folderFromFlags(flags, context);
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  return folder.withLock('create-backup', context.now(), async () => {
    const cluster = openCluster(folder);
    const client = { tls: cluster.adminTls, timeoutMs: Math.min(streamTimeoutMs, DEFAULT_TIMEOUT_SECONDS * 1000) };
    if (flags['dry-run'] === true) {
      const member = await chooseSnapshotMember(cluster, client, context.now());
      const doc = document(cluster, member, undefined);
      writeResult(context, doc, () => `[dry-run] would stream a snapshot from ${member.name} (${member.endpoint}), check its SHA-256 and store it in ${backupDestination(cluster)}\n`);
      return 0;
    }
    const taken = await takeBackup(cluster, { client, streamTimeoutMs, env: context.env, now: context.now, progress });
    writeResult(context, document(cluster, { name: taken.member, endpoint: taken.endpoint }, taken), () => `${describeBackup(taken)}\n`);
    return 0;
  });
}
