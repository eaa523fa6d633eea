import { inspect } from 'node:util';

/**
 * Where a cluster's snapshots go off-site: one S3-compatible bucket and a key prefix, reached
 * path-style at `<endpoint>/<bucket>` and signed with AWS signature v4 for `region`.
 */
export interface BackupTarget {
  readonly bucket: string;
  /** Empty, or ending in `/`: objects are `<prefix><UTC time>-<member>-rev<revision>.db`. */
  readonly prefix: string;
  /** `https://nyc3.digitaloceanspaces.com`, or any S3-compatible server's base URL. */
  readonly endpoint: string;
  /** The signing region (Spaces: the region slug). */
  readonly region: string;
}

/** DigitalOcean Spaces' endpoint for a region: what --backup-endpoint defaults to. */
export function spacesEndpoint(region: string): string {
  return `https://${region}.digitaloceanspaces.com`;
}

/** `s3://bucket/prefix` as written; undefined when it is not one. */
export function parseBackupUrl(url: string): { readonly bucket: string; readonly prefix: string } | undefined {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!match) return undefined;
  const [, bucket = '', rest = ''] = match;
  const prefix = rest === '' || rest.endsWith('/') ? rest : `${rest}/`;
  return { bucket, prefix };
}

export function backupUrlOf(target: Pick<BackupTarget, 'bucket' | 'prefix'>): string {
  return `s3://${target.bucket}/${target.prefix}`;
}

/** Path-style bucket URL, as the node's upload script and curl use it. */
export function bucketUrl(target: BackupTarget): string {
  return `${target.endpoint}/${target.bucket}`;
}

/**
 * A value that must not be printed or logged: JSON and util.inspect show a placeholder, so a
 * plan or an error that carries one never spills it. `reveal()` is the one way to read it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '<secret>';
  }
  toString(): string {
    return '<secret>';
  }
  [inspect.custom](): string {
    return '<secret>';
  }
}

/** An S3 access key pair (a Spaces key limited to the bucket). */
export interface BackupCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: Secret;
}

/** DigitalOcean's names for a Spaces key, as doctl, Terraform and the Spaces docs use them. */
export const CREDENTIAL_ENV = { accessKeyId: 'SPACES_ACCESS_KEY_ID', secretAccessKey: 'SPACES_SECRET_ACCESS_KEY' } as const;

/** The key pair from the environment; undefined when neither variable is set. Throws a message naming a half-set pair. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): BackupCredentials | { readonly problem: string } | undefined {
  const accessKeyId = env[CREDENTIAL_ENV.accessKeyId]?.trim() ?? '';
  const secret = env[CREDENTIAL_ENV.secretAccessKey]?.trim() ?? '';
  if (accessKeyId === '' && secret === '') return undefined;
  if (accessKeyId === '') return { problem: `${CREDENTIAL_ENV.accessKeyId} is not set (${CREDENTIAL_ENV.secretAccessKey} is)` };
  if (secret === '') return { problem: `${CREDENTIAL_ENV.secretAccessKey} is not set (${CREDENTIAL_ENV.accessKeyId} is)` };
  if (!/^[\x21-\x7e]+$/.test(accessKeyId)) return { problem: `${CREDENTIAL_ENV.accessKeyId} holds characters an access key never has` };
  // The node's file is key=value lines and curl reads the pair from a quoted config string.
  if (!/^[\x21-\x7e]+$/.test(secret) || /["\\]/.test(secret)) return { problem: `${CREDENTIAL_ENV.secretAccessKey} holds characters a secret key never has` };
  return { accessKeyId, secretAccessKey: new Secret(secret) };
}

/** The credentials file, on the node (root-only) and in the cluster folder (0600): two key=value lines. */
export function renderCredentialsFile(credentials: BackupCredentials): string {
  return `access_key_id=${credentials.accessKeyId}\nsecret_access_key=${credentials.secretAccessKey.reveal()}\n`;
}

export function parseCredentialsFile(text: string): BackupCredentials | undefined {
  const accessKeyId = /^access_key_id=(.+)$/m.exec(text)?.[1]?.trim();
  const secret = /^secret_access_key=(.+)$/m.exec(text)?.[1]?.trim();
  return accessKeyId && secret ? { accessKeyId, secretAccessKey: new Secret(secret) } : undefined;
}

/** A snapshot in the bucket, as the upload script names and tags it. */
export interface BackupObject {
  readonly key: string;
  /** From the name: when the snapshot was saved (UTC). */
  readonly time: string;
  readonly member: string;
  readonly revision: number;
  readonly size: number;
  /** x-amz-meta-sha256, when read (HeadObject). */
  readonly sha256?: string;
}

/**
 * `<prefix>20261203T081500Z-etcd1-rev42.db` -> its parts; undefined for any other object: a name
 * not of that form, a time that is no real UTC time (month 12, day 99), a member that is not a
 * member name, or a revision past what a number holds exactly.
 */
export function parseObjectKey(key: string, prefix: string): Pick<BackupObject, 'time' | 'member' | 'revision'> | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-([a-z]([a-z0-9-]{0,61}[a-z0-9])?)-rev(0|[1-9]\d{0,15})\.db$/.exec(key.slice(prefix.length));
  if (!match) return undefined;
  const [, y = '', mo = '', d = '', h = '', mi = '', s = '', member = '', , revisionText = ''] = match;
  const time = `${y}-${mo}-${d}T${h}:${mi}:${s}Z`;
  const date = new Date(time);
  // Date rolls February 30 over to March 2 and 24:00:00 to the next day: the round trip rejects both.
  if (Number.isNaN(date.getTime()) || date.toISOString() !== `${y}-${mo}-${d}T${h}:${mi}:${s}.000Z`) return undefined;
  const revision = Number(revisionText);
  if (!Number.isSafeInteger(revision)) return undefined;
  return { time, member, revision };
}
