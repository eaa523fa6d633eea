import { createReadStream } from 'node:fs';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type _Object } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { CliError } from '../errors.js';
import { parseObjectKey, type BackupCredentials, type BackupObject, type BackupTarget } from './target.js';

/**
 * The workstation's side of the bucket, through the AWS SDK (a well-kept S3 client that also
 * speaks to Spaces and other S3-compatible stores). Loaded only by `backups` and `restore`.
 * Every call is bounded by `timeoutMs` (--timeout), retries included: `bounded` aborts it.
 */
export interface BackupStore {
  readonly client: S3Client;
  readonly target: BackupTarget;
  readonly timeoutMs: number;
}

export function openStore(target: BackupTarget, credentials: BackupCredentials, timeoutMs: number): BackupStore {
  // The SDK warns on every Node before 22 about its releases of 2027; this tool supports Node 20 and pins the SDK.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const client = new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: true,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey.reveal() },
    maxAttempts: 3,
    // The checksum metadata is ours (x-amz-meta-sha256, as the nodes send it); no SDK trailer S3-compatible stores may not read.
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  return { client, target, timeoutMs };
}

function where(target: BackupTarget): string {
  return `s3://${target.bucket}/${target.prefix} at ${target.endpoint}`;
}

/** An SDK failure as one line naming the bucket and what S3 answered; never the key pair. */
export function storeError(what: string, target: BackupTarget, error: unknown): CliError {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const status = e.$metadata?.httpStatusCode;
  const detail = [status ? `HTTP ${status}` : undefined, e.name && e.name !== 'Error' ? e.name : e.code, e.message].filter(Boolean).join(' ');
  return new CliError('api', `${what} ${where(target)}: ${detail}`);
}

/**
 * One S3 call, given at most the store's timeout (its retries included): a server that accepts
 * and never answers, or stalls half-way, ends in an error naming what was done, the S3
 * operation and the endpoint. `what` reads "cannot list" or "cannot read <key> in".
 */
async function bounded<T>(store: BackupStore, what: string, operation: string, send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), store.timeoutMs);
  try {
    return await send(controller.signal);
  } catch (error) {
    if (controller.signal.aborted) {
      throw new CliError('api', `${what} ${where(store.target)}: ${operation} got no answer within ${store.timeoutMs / 1000} s (--timeout)`);
    }
    throw storeError(what, store.target, error);
  } finally {
    clearTimeout(timer);
  }
}

/** The most listing pages read: 100 000 objects, far more than --backup-retain (at most 900) keeps under a prefix. */
export const LIST_PAGE_LIMIT = 100;

/** What a listing found: the snapshots, newest first, and how many other objects it passed over. */
export interface BackupListing {
  readonly snapshots: readonly BackupObject[];
  /** Objects under the prefix whose names are not `<UTC time>-<member>-rev<revision>.db` (or whose size is not a size). */
  readonly skipped: number;
}

/** Every snapshot under the prefix, newest first, with the checksum each was uploaded with. */
export async function listBackups(store: BackupStore): Promise<BackupListing> {
  const { target } = store;
  const found = await listObjects(store);
  const snapshots = found.flatMap((object) => {
    const parts = object.Key ? parseObjectKey(object.Key, target.prefix) : undefined;
    const size = object.Size ?? 0;
    return parts && object.Key && Number.isSafeInteger(size) && size >= 0 ? [{ key: object.Key, size, ...parts }] : [];
  });
  snapshots.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  // One HEAD per object, a few at a time so each one's timeout measures the server, not a queue; the order stays newest first.
  const withChecksums = await mapLimited(snapshots, HEAD_CONCURRENCY, async (snapshot): Promise<BackupObject> => ({ ...snapshot, ...(await checksumOf(store, snapshot.key)) }));
  return { snapshots: withChecksums, skipped: found.length - snapshots.length };
}

/**
 * ListObjectsV2, page after page: an answer that is not a listing, a continuation token seen
 * before, a truncated page without a token, or more than LIST_PAGE_LIMIT pages is an error,
 * never a shorter list.
 */
async function listObjects(store: BackupStore): Promise<_Object[]> {
  const { target } = store;
  const found: _Object[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  for (let page = 1; ; page++) {
    const what = page === 1 ? 'cannot list' : `cannot list (page ${page})`;
    const answer = await bounded(store, what, 'ListObjectsV2', (abortSignal) =>
      store.client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: target.prefix, ContinuationToken: token }), { abortSignal }),
    );
    // Every S3 listing names its bucket and says whether it is truncated; an HTML page or an empty body has neither.
    if (answer.Name === undefined && answer.IsTruncated === undefined && answer.KeyCount === undefined) {
      throw new CliError('api', `${what} ${where(target)}: ListObjectsV2's answer is not an S3 listing (no bucket name, no IsTruncated): is the endpoint an S3 service?`);
    }
    found.push(...(answer.Contents ?? []));
    if (!answer.IsTruncated) return found;
    const next = answer.NextContinuationToken;
    if (!next) throw new CliError('api', `${what} ${where(target)}: ListObjectsV2's page is truncated but has no NextContinuationToken: the rest of the listing cannot be read`);
    if (seen.has(next)) throw new CliError('api', `${what} ${where(target)}: ListObjectsV2 returned the continuation token ${JSON.stringify(next.slice(0, 80))} a second time: the listing does not advance`);
    if (page >= LIST_PAGE_LIMIT) throw new CliError('api', `${what} ${where(target)}: ListObjectsV2 is still truncated after ${LIST_PAGE_LIMIT} pages (${found.length} objects): far more than one cluster's snapshots, so not read to the end`);
    seen.add(next);
    token = next;
  }
}

const HEAD_CONCURRENCY = 8;

async function mapLimited<T, R>(items: readonly T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function checksumOf(store: BackupStore, key: string): Promise<{ sha256?: string }> {
  const head = await bounded(store, `cannot read ${key} in`, 'HeadObject', (abortSignal) => store.client.send(new HeadObjectCommand({ Bucket: store.target.bucket, Key: key }), { abortSignal }));
  const sha256 = head.Metadata?.sha256;
  return sha256 && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {};
}

/** The longest a presigned URL may live: signature v4 allows 7 days. */
export const PRESIGN_MAX_SECONDS = 7 * 24 * 3600;

/** A GET URL for one object that needs no credentials and expires after `seconds` (signed here: no request). */
export async function presignedGetUrl(store: BackupStore, key: string, seconds: number): Promise<string> {
  try {
    return await getSignedUrl(store.client, new GetObjectCommand({ Bucket: store.target.bucket, Key: key }), { expiresIn: seconds });
  } catch (error) {
    throw storeError(`cannot presign ${key} in`, store.target, error);
  }
}

/** What a snapshot's object carries besides its bytes: the same x-amz-meta-* as etcd-backup-upload.sh sends. */
export interface SnapshotUpload {
  readonly key: string;
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
  readonly member: string;
  readonly revision: number;
}

/** PutObject of one snapshot file with its checksum metadata (sha256, member, revision), bounded by the store's timeout. */
export async function uploadSnapshot(store: BackupStore, upload: SnapshotUpload): Promise<void> {
  await bounded(store, `cannot upload ${upload.key} to`, 'PutObject', (abortSignal) =>
    store.client.send(
      new PutObjectCommand({
        Bucket: store.target.bucket,
        Key: upload.key,
        Body: createReadStream(upload.file),
        ContentLength: upload.size,
        Metadata: { sha256: upload.sha256, member: upload.member, revision: String(upload.revision) },
      }),
      { abortSignal },
    ),
  );
}

/**
 * Keeps the newest `retain` snapshots under the prefix, as etcd-backup-upload.sh does after each
 * upload: only objects named as snapshots, directly under the prefix, oldest (by name) deleted first.
 * Returns the keys deleted.
 */
export async function pruneSnapshots(store: BackupStore, retain: number): Promise<string[]> {
  const { target } = store;
  const keys = (await listObjects(store)).flatMap((object) => (object.Key && parseObjectKey(object.Key, target.prefix) ? [object.Key] : [])).sort();
  const old = keys.slice(0, Math.max(0, keys.length - retain));
  for (const key of old) {
    await bounded(store, `cannot delete ${key} from`, 'DeleteObject', (abortSignal) => store.client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key }), { abortSignal }));
  }
  return old;
}
