import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, type _Object } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { CliError } from '../errors.js';
import { parseObjectKey, type BackupCredentials, type BackupObject, type BackupTarget } from './target.js';

/**
 * The workstation's side of the bucket, through the AWS SDK (a well-kept S3 client that also
 * speaks to Spaces and other S3-compatible stores). Loaded only by `backups` and `restore`.
 */
export function s3Client(target: BackupTarget, credentials: BackupCredentials): S3Client {
  // The SDK warns on every Node before 22 about its releases of 2027; this tool supports Node 20 and pins the SDK.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: true,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey.reveal() },
    maxAttempts: 3,
  });
}

/** An SDK failure as one line naming the bucket and what S3 answered; never the key pair. */
export function storeError(what: string, target: BackupTarget, error: unknown): CliError {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const status = e.$metadata?.httpStatusCode;
  const detail = [status ? `HTTP ${status}` : undefined, e.name && e.name !== 'Error' ? e.name : e.code, e.message].filter(Boolean).join(' ');
  return new CliError('api', `${what} s3://${target.bucket}/${target.prefix} at ${target.endpoint}: ${detail}`);
}

/** Every snapshot under the prefix, newest first, with the checksum each was uploaded with. */
export async function listBackups(client: S3Client, target: BackupTarget): Promise<BackupObject[]> {
  const found: _Object[] = [];
  let token: string | undefined;
  try {
    for (let page = 0; page < 1000; page++) {
      const answer = await client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: target.prefix, ContinuationToken: token }));
      found.push(...(answer.Contents ?? []));
      token = answer.IsTruncated ? answer.NextContinuationToken : undefined;
      if (!token) break;
    }
  } catch (error) {
    throw storeError('cannot list', target, error);
  }
  const snapshots = found.flatMap((object) => {
    const parts = object.Key ? parseObjectKey(object.Key, target.prefix) : undefined;
    return parts && object.Key ? [{ key: object.Key, size: object.Size ?? 0, ...parts }] : [];
  });
  snapshots.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  // One HEAD per object, all at once (the SDK bounds the sockets); the order stays newest first.
  return Promise.all(snapshots.map(async (snapshot): Promise<BackupObject> => ({ ...snapshot, ...(await checksumOf(client, target, snapshot.key)) })));
}

async function checksumOf(client: S3Client, target: BackupTarget, key: string): Promise<{ sha256?: string }> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: key }));
    const sha256 = head.Metadata?.sha256;
    return sha256 && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {};
  } catch (error) {
    throw storeError(`cannot read ${key} in`, target, error);
  }
}

/** The longest a presigned URL may live: signature v4 allows 7 days. */
export const PRESIGN_MAX_SECONDS = 7 * 24 * 3600;

/** A GET URL for one object that needs no credentials and expires after `seconds`. */
export async function presignedGetUrl(client: S3Client, target: BackupTarget, key: string, seconds: number): Promise<string> {
  try {
    return await getSignedUrl(client, new GetObjectCommand({ Bucket: target.bucket, Key: key }), { expiresIn: seconds });
  } catch (error) {
    throw storeError(`cannot presign ${key} in`, target, error);
  }
}
