import { listBackups, PRESIGN_MAX_SECONDS, presignedGetUrl, s3Client } from '../backup/store.js';
import { Secret, type BackupObject } from '../backup/target.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_URL_HOURS } from '../defaults.js';
import { CliError, usageError } from '../errors.js';
import { refusePendingRoll } from '../cluster-folder.js';
import { backupCredentialsFor, folderOf } from '../generate.js';
import { numberFlag, stringFlag, type ParsedOptions } from '../options.js';
import type { RestorePlan } from '../plan.js';
import { validateCreateFlags } from './create-droplets.js';
import { validateClusterFlags } from './gen-userdata.js';

/** The snapshot --snapshot names (its object key or its file name), or the newest. */
export function chooseSnapshot(objects: readonly BackupObject[], wanted: string | undefined, where: string): BackupObject {
  if (objects.length === 0) throw new CliError('preflight', `no snapshots in ${where}: nothing to restore (etcd-cloudinit backups lists them)`);
  const chosen = wanted === undefined ? objects[0] : objects.find((object) => object.key === wanted || object.key.endsWith(`/${wanted}`));
  if (!chosen) throw usageError('validate', `snapshot: ${JSON.stringify(wanted)} is not in ${where} (etcd-cloudinit backups lists what is there)`);
  if (!chosen.sha256) {
    throw new CliError('preflight', `${chosen.key} in ${where} has no recorded sha256 (x-amz-meta-sha256): it was not uploaded by etcd-cloudinit, and a node could not check it`);
  }
  return chosen;
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

  const client = s3Client(target, credentials);
  const snapshot = chooseSnapshot(await listBackups(client, target), stringFlag(flags, 'snapshot'), where);
  const seconds = Math.round(hours * 3600);
  const expires = new Date(context.now().getTime() + seconds * 1000);
  const restore: RestorePlan = {
    source: `s3://${target.bucket}/${snapshot.key}`,
    sha256: snapshot.sha256!,
    revision: snapshot.revision,
    url: new Secret(await presignedGetUrl(client, target, snapshot.key, seconds)),
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
