/**
 * The one owner of a cluster folder, `<out>/<cluster-name>/`: its path (resolved once), every file
 * name in it, the records cluster.json and digitalocean.json (typed, checked on read against
 * their JSON Schemas in schema/), the PKI reader, the lock, and atomic writes. Commands open the
 * folder here and never build a path inside it or parse its files with a type of their own.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, readdirSync, realpathSync, rmSync, rmdirSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { CliError, usageError } from './errors.js';
import type { ClientTls } from './etcd/client.js';
import type { ClusterPki, IssuedCert, KeyPairPem } from './pki/mint.js';
import type { KeyType, RsaKeySize } from './keys.js';
import { parseCredentialsFile, type BackupCredentials } from './backup/target.js';
import type { ListenFrom } from './input.js';
import { compileSchema, fieldName, loadSchema } from './schemas.js';
import { PUBLIC_MODE, kernelFolderOf, recoverOutputFolder, updateOutputFolder, writeOutputFile, writeOutputFolder, type FolderUpdate, type OutputFile, type WriteStep } from './write.js';

/** Every file of a cluster folder, relative to it. */
export const FOLDER_FILES = {
  clusterJson: 'cluster.json',
  digitaloceanJson: 'digitalocean.json',
  etcdctlEnv: 'etcdctl.env',
  pkiDir: 'pki',
  cert: (fileBase: string) => `pki/${fileBase}.crt`,
  key: (fileBase: string) => `pki/${fileBase}.key`,
  userData: (member: string) => `user-data/${member}.yaml`,
  renewDir: 'renew',
  renewScript: (member: string) => `renew/${member}.sh`,
  rollJson: 'roll.json',
  /** The bucket key pair of --backup-url (0600), for the user-data of members added later. */
  backupCredentials: 'backup-credentials',
  /** Snapshots create-backup and roll keep here on a cluster without a bucket (0600: a snapshot holds every key). */
  backupsDir: 'backups',
  backup: (file: string) => `backups/${file}`,
  /** Named client certificates live in pki/clients/ (their file base is `clients/<name>`). */
  clientsDir: 'pki/clients',
  /** --kubernetes: the kit for kubeadm, kube-apiserver and k3s. */
  kubernetesDir: 'kubernetes',
  kubernetes: {
    clientCert: 'kubernetes/apiserver-etcd-client.crt',
    clientKey: 'kubernetes/apiserver-etcd-client.key',
    caCert: 'kubernetes/ca.crt',
    kubeadmConfig: 'kubernetes/kubeadm-etcd.yaml',
    apiserverFlags: 'kubernetes/kube-apiserver-flags.txt',
    k3sFlags: 'kubernetes/k3s-flags.txt',
    readme: 'kubernetes/README.txt',
  },
} as const;

/** The format of cluster.json and digitalocean.json this release writes; 0.1.0 wrote none (read as 1). */
export const FOLDER_FORMAT_VERSION = 1;

export interface CertificateRecord {
  readonly file: string;
  readonly sha256Fingerprint: string;
  /** Hex, as the member presents it in the TLS handshake (health's CERT SERIAL); absent in folders written before in-place renewal. */
  readonly serial?: string;
  readonly notAfter: string;
}

/** A member as cluster.json records it: by IPv4, or (DNS-member mode) by DNS name. */
export type MemberRecord = (
  | { readonly name: string; readonly ip: string; readonly hostname?: undefined }
  | { readonly name: string; readonly hostname: string; readonly ip?: undefined }
) & {
  readonly peerUrl?: string;
  readonly clientUrl?: string;
  readonly userData?: string;
  readonly certificate?: CertificateRecord;
};

/** cluster.json. Fields marked optional are absent in folders 0.1.0 wrote. */
export interface ClusterRecord {
  readonly formatVersion: number;
  readonly clusterName: string;
  readonly etcdVersion: string;
  /** `mode` is absent in folders written before baked images existed (download). */
  readonly install:
    | { readonly mode?: 'download'; readonly version?: string; readonly releaseUrl: string; readonly sha256?: string }
    | { readonly mode: 'baked'; readonly version: string };
  readonly initialCluster?: string;
  /** The bootstrap token: day-2 commands keep it while initial-cluster follows the members. */
  readonly initialClusterToken: string;
  readonly endpoints?: readonly string[];
  /** `--domain` clusters; inferred from the member names for folders 0.1.0 wrote. */
  readonly domain?: string;
  /** The stable client name (issue 29); absent before it was recorded. */
  readonly clientEndpoint?: string;
  /** Absent in folders written before --key-type: rsa (recordKeyType). */
  readonly keyType?: KeyType;
  /** RSA modulus bits; only used when the key type is rsa. */
  readonly keySize: RsaKeySize;
  readonly certDays: number;
  readonly raftTiming?: { readonly heartbeatIntervalMs?: number; readonly electionTimeoutMs?: number };
  /** --quota-backend-bytes; absent: etcd's default (2 GiB), as in folders written before it existed. */
  readonly quotaBackendBytes?: number;
  readonly snapshots?: false | { readonly schedule: string; readonly retain: number };
  /** The node's defragmentation timer; false with --no-defrag; absent in folders written before it existed (none). */
  readonly defrag?: false | { readonly schedule: string; readonly thresholdPercent: number };
  /** --etcd-option settings (name -> value as given); absent: none. */
  readonly etcdOptions?: Readonly<Record<string, string>>;
  /** --no-metrics sets false. Absent in folders written before metrics existed: read as false, as those members have none. */
  readonly metrics?: boolean;
  /** DNS-member mode: where members read their listen address; absent before --listen-from existed (DigitalOcean's metadata). */
  readonly listenFrom?: ListenFrom;
  /** --backup-url and its details; the key pair is in backup-credentials, never here. */
  readonly backup?: { readonly url: string; readonly endpoint: string; readonly region: string; readonly retain: number };
  /** Set when `restore` made the cluster: the snapshot its members started from. */
  readonly restoredFrom?: { readonly source: string; readonly sha256: string; readonly revision: number };
  readonly members: readonly MemberRecord[];
  /**
   * Members that left (remove-member, roll, repair), so no name is used twice: a retired member's
   * certificate stays valid until it expires. Absent in folders written before it existed.
   */
  readonly retiredMembers?: readonly string[];
  readonly ca?: CertificateRecord;
  readonly admin?: CertificateRecord;
  /** Named client certificates; absent in older folders (none). */
  readonly clients?: readonly { readonly name: string; readonly certificate?: CertificateRecord }[];
  /** --kubernetes; absent without it. `client` is the one of `clients` kube-apiserver uses. */
  readonly kubernetes?: { readonly pkiDir: string; readonly client: string };
  readonly generatedAt?: string;
}

/** A member's droplet as digitalocean.json records it. */
export interface DropletMemberRecord {
  readonly name: string;
  /** `<cluster>-<member>`: the droplet's name and its A record's name in the zone. */
  readonly dropletName: string;
  readonly hostname: string;
  readonly dropletId?: number;
  readonly privateIpv4?: string;
  readonly publicIpv4?: string;
}

/** What every droplet of the cluster is created with, so add-member makes the same kind. */
export interface DropletSettings {
  readonly size: string;
  readonly image: string | number;
  readonly sshKeys: readonly string[];
  readonly ttl: number;
}

/** digitalocean.json: what create-droplets (and add-member/remove-member on such a cluster) made. */
export interface DigitalOceanState {
  readonly formatVersion: number;
  readonly clusterName: string;
  readonly region: string;
  readonly domain: string;
  readonly tag: string;
  readonly vpc: { readonly id?: string; readonly name: string; readonly ipRange?: string; readonly createdByTool?: boolean };
  readonly firewall?: { readonly id?: string; readonly name: string };
  /** Who the firewall lets in past the VPC (--ssh-from, --trusted-source); absent before it was recorded. */
  readonly access?: { readonly sshFrom: readonly string[]; readonly trustedSources: readonly string[] };
  /** Absent in folders 0.1.0 wrote. */
  readonly droplet?: DropletSettings;
  readonly members: readonly DropletMemberRecord[];
  readonly updatedAt?: string;
}

/** One action of a replacement; a roll adds before it removes, a repair removes (the dead member) first. */
export type ReplaceAction = 'add' | 'promote' | 'remove-old' | 'retire-old';

/** One member being replaced, as roll.json keeps it: every action already done, so a re-run goes on with the next. */
export interface ReplacementStep {
  /** The member replaced. */
  readonly old: string;
  /** Its peer URL: a repair removes it from cluster.json before the replacement exists. */
  readonly oldPeerUrl: string;
  /** The replacement: a name never used before in this cluster, and its address. */
  readonly replacement: MemberRecord;
  readonly done: readonly ReplaceAction[];
  /** The replacement's member ID (decimal, as the API gives it) once added. */
  readonly memberId?: string;
  /** Why the last try of this step was rolled back. */
  readonly lastFailure?: string;
}

/** The key type of a cluster.json or roll.json target: written before --key-type existed, it is rsa. */
export const recordKeyType = (record: { readonly keyType?: KeyType }): KeyType => record.keyType ?? 'rsa';

/** What the replacements get beyond fresh certificates: the settings cluster.json takes when the roll ends. */
export interface RollTarget {
  readonly etcdVersion: string;
  readonly install: ClusterRecord['install'];
  /** Absent in roll.json written before --key-type: rsa. */
  readonly keyType?: KeyType;
  readonly keySize: ClusterRecord['keySize'];
  /** create-droplets clusters: what the replacement droplets are created with. */
  readonly droplet?: DropletSettings;
}

/** roll.json: the roll or repair in progress (if any), and every replacement made, so no name is used twice. */
export interface RollState {
  readonly formatVersion: number;
  readonly current?: {
    readonly operation: 'roll' | 'repair';
    readonly startedAt: string;
    readonly fromVersion: string;
    readonly target: RollTarget;
    readonly steps: readonly ReplacementStep[];
    /**
     * The roll's last step, once every member is replaced and healthy: the admin and client
     * certificates re-issued (same CA, the target's key type, new keys) and kubernetes/ rewritten.
     * Absent when it is not part of the plan: a repair, a roll of some members only, roll.json
     * written before this step existed.
     */
    readonly renewCredentials?: { readonly done: boolean };
    /**
     * The snapshot taken before the first replacement (create-backup's, day2 docs): where it went,
     * or `skipped` (--no-backup). Absent until then: a resumed run takes it if no replacement was added yet.
     */
    readonly backup?: { readonly takenAt: string; readonly location: string } | { readonly skipped: true };
  };
  /** Every replacement made (and, `aborted`, every one minted by a roll or repair that --abort ended): its name is never used again. */
  readonly history: readonly { readonly old: string; readonly replacement: string; readonly operation: 'roll' | 'repair'; readonly finishedAt: string; readonly aborted?: boolean }[];
}

// Compiled on first read, not at import: --help loads this module for FOLDER_FILES alone.
const schemaFiles = { cluster: 'cluster-record.schema.json', digitalocean: 'digitalocean-state.schema.json', roll: 'roll-state.schema.json' } as const;
const validators: Partial<Record<keyof typeof schemaFiles, ReturnType<typeof compileSchema>>> = {};

/** How messages show `<out>/<cluster-name>`: as the user gave --out, absolute or relative (`/srv/etcd/prod`, `out/etcd`, `../x/etcd`). */
export function shownPath(out: string, clusterName: string, cwd: string): string {
  return isAbsolute(out) ? resolve(cwd, out, clusterName) : normalize(join(out, clusterName));
}

export class ClusterFolder {
  /** Absolute path of `<out>/<cluster-name>`. */
  readonly dir: string;
  /** The folder as messages show it: absolute when --out is, else relative to the working directory. */
  readonly shown: string;

  constructor(
    readonly out: string,
    readonly clusterName: string,
    cwd: string,
  ) {
    this.dir = resolve(cwd, out, clusterName);
    this.shown = shownPath(out, clusterName, cwd);
  }

  /** Absolute path of a file in the folder (a FOLDER_FILES name). */
  path(file: string): string {
    return join(this.dir, file);
  }

  /** As messages show it. */
  shownFile(file: string): string {
    return `${this.shown}/${file}`;
  }

  exists(file: string): boolean {
    return existsSync(this.path(file));
  }

  /** cluster.json, checked; a missing, unreadable or malformed file is a [parse] error naming the field. */
  readClusterRecord(): ClusterRecord {
    if (!this.exists(FOLDER_FILES.clusterJson)) {
      throw usageError('parse', `cluster-name: no cluster.json in ${JSON.stringify(this.dir)}; run gen-userdata first, or pass --out/--cluster-name of an existing cluster`);
    }
    const record = upgradeClusterRecord(this.readChecked(FOLDER_FILES.clusterJson, 'cluster'));
    if (record.clusterName !== this.clusterName) {
      throw new CliError('parse', `cluster.json: clusterName is ${JSON.stringify(record.clusterName)}, but the folder is for ${JSON.stringify(this.clusterName)}`);
    }
    return record;
  }

  /** digitalocean.json when create-droplets made this cluster; undefined otherwise. */
  readDigitalOceanState(): DigitalOceanState | undefined {
    if (!this.exists(FOLDER_FILES.digitaloceanJson)) return undefined;
    const document = this.readChecked(FOLDER_FILES.digitaloceanJson, 'digitalocean') as Omit<DigitalOceanState, 'formatVersion'> & { formatVersion?: number };
    return { ...document, formatVersion: FOLDER_FORMAT_VERSION };
  }

  /** The bucket key pair gen-userdata stored (backup-credentials, 0600); undefined when there is none. */
  readBackupCredentials(): BackupCredentials | undefined {
    if (!this.exists(FOLDER_FILES.backupCredentials)) return undefined;
    const file = this.path(FOLDER_FILES.backupCredentials);
    // As ssh refuses a private key others can read: the key pair may already have leaked, and using it hides that.
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new CliError(
        'preflight',
        `${file} has mode ${mode.toString(8).padStart(4, '0')}: the bucket key pair in it is readable by ${mode & 0o007 ? 'every user' : 'its group'}; make it private (chmod 600 ${file}), and rotate the key if others could have read it (docs/backups.md)`,
      );
    }
    const credentials = parseCredentialsFile(readFileSync(file, 'utf8'));
    if (!credentials) throw new CliError('parse', `${file}: not access_key_id=... and secret_access_key=... lines`);
    return credentials;
  }

  /** roll.json, checked; undefined when no roll or repair ever ran here. */
  readRollState(): RollState | undefined {
    if (!this.exists(FOLDER_FILES.rollJson)) return undefined;
    return this.readChecked(FOLDER_FILES.rollJson, 'roll') as unknown as RollState;
  }

  private readChecked(file: string, kind: keyof typeof schemaFiles): Record<string, unknown> {
    let document: unknown;
    try {
      document = JSON.parse(readFileSync(this.path(file), 'utf8'));
    } catch (error) {
      const reason = error instanceof SyntaxError ? `is not valid JSON: ${error.message}` : `cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`;
      throw new CliError('parse', `${file}: ${reason}`);
    }
    const version = (document as { formatVersion?: unknown } | null)?.formatVersion;
    if (typeof version === 'number' && version > FOLDER_FORMAT_VERSION) {
      throw new CliError('parse', `${file}: formatVersion ${version} was written by a newer etcd-cloudinit (this one reads ${FOLDER_FORMAT_VERSION}); upgrade etcd-cloudinit`);
    }
    const validate = (validators[kind] ??= compileSchema(loadSchema(schemaFiles[kind])));
    if (!validate(document)) {
      const first = validate.errors?.[0];
      const field = first ? fieldName(first.instancePath) || 'the document' : 'the document';
      throw new CliError('parse', `${file}: ${field} ${first?.message ?? 'is invalid'}; was it written by etcd-cloudinit?`);
    }
    return document as Record<string, unknown>;
  }

  /** Certificates and keys in pki/ and pki/clients/, by file base (`ca`, `etcd1`, `admin`, `clients/<name>`), so a re-run can keep them. */
  readPki(): Map<string, Partial<KeyPairPem>> {
    const existing = new Map<string, Partial<KeyPairPem>>();
    const pkiDir = this.path(FOLDER_FILES.pkiDir);
    for (const [dir, prefix] of [[pkiDir, ''], [this.path(FOLDER_FILES.clientsDir), 'clients/']] as const) {
      if (!existsSync(dir)) continue;
      for (const entry of readdirSync(dir)) {
        const match = /^(.+)\.(crt|key)$/.exec(entry);
        if (!match) continue;
        const [, name, kind] = match as unknown as [string, string, 'crt' | 'key'];
        const base = `${prefix}${name}`;
        const pair = existing.get(base) ?? {};
        existing.set(base, { ...pair, [kind === 'crt' ? 'certPem' : 'keyPem']: readFileSync(join(dir, entry), 'utf8') });
      }
    }
    return existing;
  }

  /** The CA and admin pair from pki/: what a command needs to talk to the cluster. */
  adminTls(pki: ReadonlyMap<string, Partial<KeyPairPem>>): ClientTls {
    const pem = (base: string, kind: keyof KeyPairPem) => {
      const value = pki.get(base)?.[kind];
      if (!value) throw new CliError('parse', `${kind === 'certPem' ? FOLDER_FILES.cert(base) : FOLDER_FILES.key(base)}: missing in ${this.dir}`);
      return value;
    };
    return { caPem: pem('ca', 'certPem'), certPem: pem('admin', 'certPem'), keyPem: pem('admin', 'keyPem') };
  }

  readUserData(member: string): string {
    const file = FOLDER_FILES.userData(member);
    try {
      return readFileSync(this.path(file), 'utf8');
    } catch (error) {
      throw new CliError('parse', `${file}: cannot read it: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  }

  /** The renewal scripts an earlier renew-certs left, as folder file names. */
  renewScripts(): string[] {
    try {
      return readdirSync(this.path(FOLDER_FILES.renewDir)).map((entry) => `${FOLDER_FILES.renewDir}/${entry}`);
    } catch {
      return [];
    }
  }

  /** Writes the whole folder, crash-safe (write.ts); entries this run does not produce stay. `step`: the crash tests' seam. */
  writeAll(files: readonly OutputFile[], step?: WriteStep): void {
    // A run without --kubernetes leaves no kit naming old endpoints or a deleted certificate behind.
    writeOutputFolder(this.dir, files, step, [FOLDER_FILES.kubernetesDir]);
    // Nor the kit folders of an earlier run with --kubernetes or --client, once nothing is left in them.
    for (const kitDir of [FOLDER_FILES.kubernetesDir, FOLDER_FILES.clientsDir]) removeIfEmpty(this.path(kitDir));
  }

  /** Replaces, adds and deletes some files, crash-safe (write.ts); the CA files are never touched. */
  update(update: FolderUpdate, step?: WriteStep): void {
    updateOutputFolder(this.dir, update, step);
  }

  writeDigitalOceanState(state: Omit<DigitalOceanState, 'formatVersion'>): void {
    writeOutputFile(this.dir, { path: FOLDER_FILES.digitaloceanJson, content: serialize({ formatVersion: FOLDER_FORMAT_VERSION, ...state }), mode: PUBLIC_MODE });
  }

  /** `out/.etcd.lock` for `out/etcd`: beside the folder, since the folder itself is replaced by rename. */
  get lockPath(): string {
    return join(dirname(this.dir), `.${basename(this.dir)}.lock`);
  }

  /**
   * Runs `change` while holding the folder's lock, so that two commands never read, change and
   * replace the same folder at once (the second rename would silently undo the first's change).
   * A lock left by a process of this host that no longer runs is taken over; any other held lock
   * is an error naming its holder. With the lock held, a write of the folder that an earlier
   * command left cut short is finished (or its staging folder removed) before `change` reads it.
   * Folders created for the lock are removed again if nothing else was written into them.
   */
  async withLock<T>(command: string, now: Date, change: () => Promise<T>): Promise<T> {
    // A relative --out is only known to be under /proc or /sys once resolved (recursive mkdir would spin there).
    const kernel = kernelFolderOf(this.dir);
    if (kernel !== undefined) throw usageError('validate', `out: ${JSON.stringify(this.out)} is under ${kernel}, a kernel interface, not a folder for files`);
    let firstCreated: string | undefined;
    try {
      firstCreated = mkdirSync(dirname(this.dir), { recursive: true });
    } catch (error) {
      throw new CliError('write', `cannot write ${this.dir}: ${(error as Error).message}`);
    }
    const holder: LockHolder = { command, pid: process.pid, hostname: hostname(), startedAt: now.toISOString() };
    try {
      takeLock(this.lockPath, this.dir, holder);
      try {
        recoverOutputFolder(this.dir);
        return await change();
      } finally {
        rmSync(this.lockPath, { force: true });
      }
    } finally {
      if (firstCreated) removeEmptyFolders(dirname(this.dir), firstCreated);
    }
  }
}

/** A folder 0.1.0 wrote reads as format 1: its `--domain` is inferred from the member names. */
function upgradeClusterRecord(document: Record<string, unknown>): ClusterRecord {
  const record = document as unknown as Omit<ClusterRecord, 'formatVersion'> & { formatVersion?: number };
  if (record.formatVersion !== undefined) return record as ClusterRecord;
  return { ...record, formatVersion: FOLDER_FORMAT_VERSION, ...inferDomain(record) };
}

function inferDomain(record: Pick<ClusterRecord, 'clusterName' | 'members'>): { domain?: string } {
  const prefix = (name: string) => `${record.clusterName}-${name}.`;
  const domains = new Set(record.members.map((member) => (member.hostname?.startsWith(prefix(member.name)) ? member.hostname.slice(prefix(member.name).length) : undefined)));
  const [domain] = domains;
  return domains.size === 1 && domain !== undefined ? { domain } : {};
}

function serialize(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** The named client's certificate among the cluster's. */
export function clientCertificate(pki: ClusterPki, name: string): IssuedCert {
  const cert = pki.all.find((candidate) => candidate.client === name);
  if (!cert) throw new Error(`no client certificate ${name} in the PKI`);
  return cert;
}

/**
 * gen-userdata --force and restore start the folder's cluster over: a roll or repair still in
 * progress would then block the new cluster and plan against the old one's members. They refuse
 * before anything is written or asked; the roll is finished or undone first.
 */
export function refusePendingRoll(folder: ClusterFolder, command: string): void {
  if (!folder.exists(FOLDER_FILES.rollJson)) return;
  const current = folder.readRollState()?.current;
  if (!current) return;
  throw new CliError(
    'preflight',
    `a ${current.operation} of cluster ${folder.clusterName} is in progress (started ${current.startedAt}, ${folder.shownFile(FOLDER_FILES.rollJson)}); finish it with '${current.operation}', or undo it with '${current.operation} --abort', then run ${command} again`,
  );
}

/** roll.json as a folder file, for an update together with the files a step changed. */
export function rollStateFile(state: Omit<RollState, 'formatVersion'>): OutputFile {
  return { path: FOLDER_FILES.rollJson, content: serialize({ formatVersion: FOLDER_FORMAT_VERSION, ...state }), mode: PUBLIC_MODE };
}

/** cluster.json as a folder file; its content is the record codec's (record-codec.ts). */
export function clusterRecordFile(record: ClusterRecord): OutputFile {
  return { path: FOLDER_FILES.clusterJson, content: serialize(record), mode: PUBLIC_MODE };
}

/** Who holds a folder's lock: written into the lock file, shown to whoever finds it taken. */
export interface LockHolder {
  readonly command: string;
  readonly pid: number;
  readonly hostname: string;
  readonly startedAt: string;
}

function takeLock(path: string, outDir: string, holder: LockHolder): void {
  const attempt = tryLock(path, holder, 0);
  if (attempt.state === 'taken') return;
  if (attempt.state === 'busy') {
    throw new CliError('preflight', `${outDir}: could not take the lock ${path} (others were taking it over); try again, and if this persists, delete ${path} and ${path}.takeover-*`);
  }
  const other = attempt.holder;
  const who = other ? `${other.command} (pid ${other.pid} on ${other.hostname}, since ${other.startedAt})` : 'another etcd-cloudinit command';
  throw new CliError('preflight', `${outDir} is being changed by ${who}; wait for it to finish, or if that process is gone, delete ${path}`);
}

type LockAttempt = { readonly state: 'taken' } | { readonly state: 'held'; readonly holder: LockHolder | undefined } | { readonly state: 'busy' };

/** Claims of claims: each level only exists if a taker died in the few steps of a takeover. */
const MAX_TAKEOVER_DEPTH = 3;

/**
 * Creates the lock file, or takes over a stale one (its process, on this host, no longer runs).
 * Only a taker holding the claim `<lock>.takeover-<digest of the stale file>` (itself a lock,
 * taken the same way) may delete a lock file, and only while it still has those exact bytes: no
 * live lock has them, so two takers can never both delete and both create.
 */
function tryLock(path: string, holder: LockHolder, depth: number): LockAttempt {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (createLockFile(path, holder)) return { state: 'taken' };
    const seen = readIfPresent(path);
    if (!seen) continue; // released in between
    const other = parseLockHolder(seen);
    if (!other || other.hostname !== holder.hostname || processRuns(other.pid)) return { state: 'held', holder: other };
    const claim = `${path}.takeover-${createHash('sha256').update(seen).digest('hex').slice(0, 16)}`;
    if (depth < MAX_TAKEOVER_DEPTH && tryLock(claim, holder, depth + 1).state === 'taken') {
      try {
        if (readIfPresent(path)?.equals(seen)) unlinkSync(path); // left by a command that crashed or was killed
      } finally {
        rmSync(claim, { force: true });
      }
    } else {
      sleepMs(5 + Math.random() * 20); // another taker holds the claim: it is done in a moment
    }
  }
  return { state: 'busy' };
}

/** The lock file appears whole or not at all (written aside, then linked): a reader never sees half of it. */
function createLockFile(path: string, holder: LockHolder): boolean {
  const content = `${JSON.stringify(holder)}\n`;
  const aside = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(aside, content, { flag: 'wx', mode: PUBLIC_MODE });
  try {
    linkSync(aside, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw error;
    // A file system without hard links: created exclusively instead.
    try {
      writeFileSync(path, content, { flag: 'wx', mode: PUBLIC_MODE });
      return true;
    } catch (fallbackError) {
      if ((fallbackError as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fallbackError;
    }
  } finally {
    rmSync(aside, { force: true });
  }
}

function readIfPresent(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

function parseLockHolder(content: Buffer): LockHolder | undefined {
  try {
    const holder = JSON.parse(content.toString('utf8')) as Partial<LockHolder>;
    if (typeof holder.command === 'string' && Number.isInteger(holder.pid) && typeof holder.hostname === 'string' && typeof holder.startedAt === 'string') {
      return holder as LockHolder;
    }
  } catch {
    // unreadable: treated as held by an unknown command
  }
  return undefined;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Signal 0 only asks whether the process exists; nothing is sent to it. */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the folder if it is there and empty; a folder with anything in it (a run that asked for it, a file of the user's) stays. */
function removeIfEmpty(folder: string): void {
  try {
    if (readdirSync(folder).length === 0) rmdirSync(folder);
  } catch {
    // absent, or not ours to read: nothing to tidy
  }
}

/** Removes `from` and its parents up to `upTo` (the first folder mkdir created), while they are empty. */
function removeEmptyFolders(from: string, upTo: string): void {
  for (let folder = from; folder.startsWith(upTo); folder = dirname(folder)) {
    try {
      rmdirSync(folder);
    } catch {
      return; // not empty: something was written
    }
    if (folder === upTo) return;
  }
}
