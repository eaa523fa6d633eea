// A bucket and its key pair for a cluster folder: where the flags, cluster.json and the folder's
// backup-credentials meet (backup/ itself knows no folder).
import type { ClusterFolder } from './cluster-folder.js';
import { FOLDER_FILES } from './cluster-folder.js';
import { usageError } from './errors.js';
import { flagsToRawInput, resolveBackupInput, type BackupSettings } from './input.js';
import type { ParsedOptions } from './options.js';
import { CREDENTIAL_ENV, credentialsFromEnv, type BackupCredentials, type BackupTarget } from './backup/target.js';

/** A bucket and prefix with the key pair to read it: what `backups` and `restore` work from. */
export interface BucketAccess {
  readonly target: BackupSettings;
  readonly credentials: BackupCredentials;
}

/**
 * --backup-url (with --backup-region/--backup-endpoint), or else the cluster's own from its
 * cluster.json; the key pair from SPACES_ACCESS_KEY_ID/SPACES_SECRET_ACCESS_KEY, or else the
 * folder's backup-credentials. Usage errors name what is missing; nothing is contacted here.
 */
export function bucketFromFlags(flags: ParsedOptions, env: NodeJS.ProcessEnv, folder: ClusterFolder, defaultRegion?: string): BucketAccess {
  const raw = flagsToRawInput(flags);
  const record = raw['backup-url'] === undefined && folder.exists(FOLDER_FILES.clusterJson) ? folder.readClusterRecord() : undefined;
  if (record?.backup) {
    raw['backup-url'] = record.backup.url;
    raw['backup-endpoint'] ??= record.backup.endpoint;
    raw['backup-region'] ??= record.backup.region;
  }
  if (raw['backup-url'] !== undefined && raw['backup-region'] === undefined && defaultRegion !== undefined) raw['backup-region'] = defaultRegion;
  const target = resolveBackupInput(raw);
  if (!target) {
    throw usageError('validate', `backup-url: is required (s3://<bucket>/<prefix>), or run where ${folder.shownFile(FOLDER_FILES.clusterJson)} names one (gen-userdata --backup-url)`);
  }
  return { target, credentials: credentialsFor(target, env, folder) };
}

/**
 * The bucket key pair: from SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY, or else the copy the
 * cluster folder keeps. A usage error when neither is there, or when only half the pair is set.
 */
export function credentialsFor(target: Pick<BackupTarget, 'bucket' | 'prefix'>, env: NodeJS.ProcessEnv, folder: ClusterFolder): BackupCredentials {
  const fromEnv = credentialsFromEnv(env);
  if (fromEnv && 'problem' in fromEnv) throw usageError('validate', `backup-url: ${fromEnv.problem}`);
  const credentials = fromEnv ?? folder.readBackupCredentials();
  if (!credentials) {
    throw usageError(
      'validate',
      `backup-url: s3://${target.bucket}/${target.prefix} needs a key pair: set ${CREDENTIAL_ENV.accessKeyId} and ${CREDENTIAL_ENV.secretAccessKey} (a Spaces key limited to that bucket; see docs/backups.md)`,
    );
  }
  return credentials;
}
