import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { CliError, usageError } from '../errors.js';
import { SnapshotChecker } from './snapshot.js';
import type { BackupStore } from './store.js';
import { parseObjectKey } from './target.js';

/** True when `--snapshot` names a file on this machine (create-backup's backups/<name>.db), not an object. */
export function isLocalSnapshot(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * restore --snapshot <file>: a snapshot kept in the folder (create-backup or roll on a cluster
 * without a bucket) goes to the bucket first, checked and tagged as create-backup uploads, since
 * the new members download it from there. Returns its object key.
 */
export async function uploadLocalSnapshot(store: BackupStore, file: string): Promise<string> {
  const name = basename(file);
  const parts = parseObjectKey(name, '');
  if (!parts) throw usageError('validate', `snapshot: ${JSON.stringify(file)} is not named <UTC time>-<member>-rev<revision>.db, as create-backup names the files it keeps`);
  const checker = new SnapshotChecker();
  for await (const chunk of createReadStream(file)) checker.update(chunk as Buffer);
  const checked = checker.finish();
  if (!checked.ok) throw new CliError('check', `snapshot: ${file} is refused: ${checked.problem}; nothing was uploaded`);
  const key = `${store.target.prefix}${name}`;
  const { uploadSnapshot } = await import('./store.js');
  await uploadSnapshot(store, { key, file, size: checked.size, sha256: checked.sha256, member: parts.member, revision: parts.revision });
  return key;
}
