import { resolve } from 'node:path';
import { isLocalSnapshot, uploadLocalSnapshot } from '../backup/local.js';
import { listBackups, openStore, PRESIGN_MAX_SECONDS, presignedGetUrl, type BackupListing, type BackupStore } from '../backup/store.js';
import { Secret, type BackupObject } from '../backup/target.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_URL_HOURS } from '../defaults.js';
import { CliError, usageError } from '../errors.js';
import { refusePendingRoll } from '../cluster-folder.js';
import { parseTimeoutMs } from '../day2/open-cluster.js';
import { backupCredentialsFor, folderOf } from '../generate.js';
import { numberFlag, stringFlag, type ParsedOptions } from '../options.js';
import type { RestorePlan } from '../plan.js';
import { validateCreateFlags } from './create-droplets.js';
import { skippedNote } from './backups.js';
import { validateClusterFlags } from './gen-userdata.js';

/** The snapshot to restore, and why it was taken when --snapshot did not name it. */
export interface SnapshotChoice {
  readonly snapshot: BackupObject;
  /** Newer objects passed over because they have no recorded sha256 (only without --snapshot). */
  readonly passedOver: readonly BackupObject[];
}

/**
 * The snapshot --snapshot names (its object key or its file name), or the newest restorable one:
 * the newest with a recorded sha256, since a node checks the download against it.
 */
export function chooseSnapshot(objects: readonly BackupObject[], wanted: string | undefined, where: string): SnapshotChoice {
  if (objects.length === 0) throw new CliError('preflight', `no snapshots in ${where}: nothing to restore (etcd-cloudinit backups lists them)`);
  if (wanted === undefined) {
    const index = objects.findIndex((object) => object.sha256 !== undefined);
    if (index < 0) {
      throw new CliError(
        'preflight',
        `none of the ${objects.length} snapshot(s) in ${where} has a recorded sha256 (x-amz-meta-sha256): they were not uploaded by etcd-cloudinit, and a node could not check them`,
      );
    }
    return { snapshot: objects[index]!, passedOver: objects.slice(0, index) };
  }
  const chosen = objects.find((object) => object.key === wanted || object.key.endsWith(`/${wanted}`));
  if (!chosen) throw usageError('validate', `snapshot: ${JSON.stringify(wanted)} is not in ${where} (etcd-cloudinit backups lists what is there)`);
  if (!chosen.sha256) {
    throw new CliError('preflight', `${chosen.key} in ${where} has no recorded sha256 (x-amz-meta-sha256): it was not uploaded by etcd-cloudinit, and a node could not check it`);
  }
  return { snapshot: chosen, passedOver: [] };
}

/** The lines restore prints about the listing before it says which snapshot it took. */
export function listingNotes(listing: BackupListing, choice: SnapshotChoice): string[] {
  const notes: string[] = [];
  const skipped = skippedNote(listing.skipped);
  if (skipped) notes.push(`restore: ${skipped}`);
  const over = choice.passedOver;
  if (over.length > 0) {
    const shown = over.slice(0, 3).map((object) => object.key).join(', ');
    notes.push(
      `restore: passed over ${over.length} newer snapshot(s) with no recorded sha256, which a node could not check (${shown}${over.length > 3 ? ', ...' : ''}); took the newest restorable one`,
    );
  }
  return notes;
}

/** list -> choose -> presign, saying on stderr what the listing passed over; the store is closed after. */
async function snapshotFromBucket(store: BackupStore, wanted: string | undefined, where: string, seconds: number, context: CommandContext): Promise<{ snapshot: BackupObject; url: string }> {
  try {
    const listing = await listBackups(store);
    const choice = chooseSnapshot(listing.snapshots, wanted, where);
    for (const note of listingNotes(listing, choice)) context.stderr.write(`${note}\n`);
    return { snapshot: choice.snapshot, url: await presignedGetUrl(store, choice.snapshot.key, seconds) };
  } finally {
    store.client.destroy();
  }
}

/**
 * restore: a new cluster, as gen-userdata (or, with --region, create-droplets) would make it, whose
 * members restore a snapshot from the bucket at first boot. validate (all flags, no network) ->
 * list and choose -> presign -> generate (and create droplets).
 */
export async function runRestore(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const onDigitalOcean = stringFlag(flags, 'region') !== undefined;
  if (flags['dry-run'] === true && !onDigitalOcean) {
    throw usageError('validate', 'dry-run: only with --region (a restore without it makes no API call: it writes the folder, which you can delete)');
  }
  const timeoutMs = parseTimeoutMs(flags);
  const hours = numberFlag(flags, 'url-expiry', DEFAULT_URL_HOURS, (n) => Number.isInteger(n) && n >= 1 && n * 3600 <= PRESIGN_MAX_SECONDS, 'is not a whole number of hours from 1 to 168 (signed URLs live at most 7 days)');
  const input = onDigitalOcean ? validateCreateFlags(flags, context.cwd).input : validateClusterFlags(flags, context);
  if (!input.backup) {
    throw usageError('validate', 'backup-url: is required: the s3://<bucket>/<prefix> whose snapshot to restore (the new cluster uploads its own there too)');
  }
  const folder = folderOf(input, context.cwd);
  refusePendingRoll(folder, 'restore');
  const target = input.backup;
  const credentials = backupCredentialsFor(input, context.env, folder)!;
  const where = `s3://${target.bucket}/${target.prefix}`;

  const seconds = Math.round(hours * 3600);
  const store = openStore(target, credentials, timeoutMs);
  let wanted = stringFlag(flags, 'snapshot');
  if (wanted !== undefined && isLocalSnapshot(resolve(context.cwd, wanted))) {
    const file = resolve(context.cwd, wanted);
    if (flags['dry-run'] === true) {
      store.client.destroy();
      throw usageError('validate', `snapshot: ${JSON.stringify(wanted)} is a local file, which restore uploads to the bucket before it restores; a dry run uploads nothing: run restore without --dry-run`);
    }
    wanted = await uploadLocalSnapshot(store, file).catch((error: unknown) => {
      store.client.destroy();
      throw error;
    });
    context.stderr.write(`restore: uploaded ${wanted} (checked) from ${stringFlag(flags, 'snapshot')} to ${where}: the new members download it from there\n`);
  }
  const { snapshot, url } = await snapshotFromBucket(store, wanted, where, seconds, context);
  const expires = new Date(context.now().getTime() + seconds * 1000);
  const restore: RestorePlan = {
    source: `s3://${target.bucket}/${snapshot.key}`,
    sha256: snapshot.sha256!,
    revision: snapshot.revision,
    url: new Secret(url),
    urlExpires: expires.toISOString(),
  };
  context.stderr.write(
    `restore: snapshot ${snapshot.key} (member ${snapshot.member}, revision ${snapshot.revision}, saved ${snapshot.time}, sha256 ${snapshot.sha256}); ` +
      `its download URL in the user-data expires ${restore.urlExpires}: boot the members before then\n`,
  );
  if (onDigitalOcean) {
    const { runCreateDroplets } = await import('./create-droplets.js');
    return runCreateDroplets(flags, context, restore);
  }
  const { runGenUserdata } = await import('./gen-userdata.js');
  return runGenUserdata(flags, context, restore, input);
}
