import { closeSync, existsSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { usageError } from './errors.js';
import { ipv4ToNumber, isPrivateOrLoopback, isUnicastIPv4, numberToIpv4 } from './ipv4.js';
import type { ParsedOptions } from './options.js';
import { compileSchema, fieldName, loadSchema, type ErrorObject } from './schemas.js';
import { kernelFolderOf } from './write.js';
import { isCalendarExpression } from './systemd-calendar.js';
import { DEFAULT_ETCD_VERSION, DEFAULT_RELEASE_URL } from './versions.js';
import { DEFAULT_DEFRAG_SCHEDULE, DEFAULT_DEFRAG_THRESHOLD_PERCENT } from './defaults.js';
import { checkEtcdOptions, EtcdOptionError, parseEtcdOptionFlags } from './etcd-options.js';
import { DEFAULT_BACKUP_RETAIN, DEFAULT_CERT_DAYS, DEFAULT_CLUSTER_NAME, DEFAULT_INSTALL_MODE, DEFAULT_K8S_PKI_DIR, DEFAULT_MEMBER_COUNT, DEFAULT_OUT, DEFAULT_SNAPSHOT_RETAIN, DEFAULT_SNAPSHOT_SCHEDULE, ETCD_ELECTION_TIMEOUT_MS, ETCD_HEARTBEAT_INTERVAL_MS } from './defaults.js';
import { DEFAULT_KEY_TYPE, DEFAULT_RSA_KEY_SIZE, type KeyType, type RsaKeySize } from './keys.js';
import { parseBackupUrl, spacesEndpoint, type BackupCredentials, type BackupTarget } from './backup/target.js';

/** The published JSON Schema of the input (also for editors: `# yaml-language-server: $schema=...`). */
export const clusterSchema = loadSchema('cluster.schema.json');

/**
 * How peers and clients reach a member: a fixed IPv4, or (DNS-member mode) a DNS name whose
 * address is only known after the machine exists, as on DigitalOcean.
 */
export type MemberInput =
  | { readonly name: string; readonly ip: string; readonly hostname?: undefined }
  | { readonly name: string; readonly hostname: string; readonly ip?: undefined };

export type InstallMode = 'download' | 'baked';

/** DNS-member mode: where a member reads the private IPv4 it listens on, at each start (--listen-from, --listen-cidr). */
export type ListenFrom =
  /** DigitalOcean's metadata service. */
  | { readonly from: 'do-metadata' }
  /** The one IPv4 address the host has inside `cidr` (`ip -4 addr`). */
  | { readonly from: 'cidr'; readonly cidr: string }
  /** cloud-init's instance data: `cloud-init query <key>`. */
  | { readonly from: 'instance-data' };

/** The CN kubeadm gives kube-apiserver's etcd client certificate (certlist.go, KubeadmCertEtcdAPIClient). */
export const KUBE_APISERVER_ETCD_CLIENT = 'kube-apiserver-etcd-client';
export { DEFAULT_K8S_PKI_DIR } from './defaults.js';


/** The validated input of gen-userdata, with defaults applied. */
export interface ClusterInput {
  readonly clusterName: string;
  readonly members: readonly MemberInput[];
  /** DNS-member mode with derived names (`--domain`): a member added later is named `<cluster-name>-<member>.<domain>` too. */
  readonly domain: string | undefined;
  /** The cluster's stable client name (issue 29), in every member certificate; `<cluster-name>.<domain>` by default with a domain. */
  readonly clientEndpoint?: string | undefined;
  readonly out: string;
  readonly etcdVersion: string;
  readonly releaseUrl: string;
  readonly etcdSha256: string | undefined;
  /** download: fetch and verify the release at first boot; baked: the image has it, only check the version. */
  readonly install: InstallMode;
  /** The type of every key minted (--key-type); keySize is the RSA modulus size, unused for ECDSA. */
  readonly keyType: KeyType;
  readonly keySize: RsaKeySize;
  readonly certDays: number;
  /** etcd's raft timing in milliseconds; undefined keeps etcd's defaults (100 / 1000). */
  readonly heartbeatIntervalMs: number | undefined;
  readonly electionTimeoutMs: number | undefined;
  /** etcd's quota-backend-bytes; undefined keeps etcd's default (2 GiB). */
  readonly quotaBackendBytes: number | undefined;
  /** --etcd-option / etcd-options: allowlisted etcd settings, checked for etcdVersion (src/etcd-options.ts). */
  readonly etcdOptions: Readonly<Record<string, string>>;
  /** The defragmentation timer on every node (opt out with --no-defrag). */
  readonly defrag: boolean;
  readonly defragSchedule: string;
  /** Whole percent of the database file that must be free before a member is defragmented. */
  readonly defragThreshold: number;
  readonly allowEven: boolean;
  /** Scheduled snapshots on every node (opt out with --no-snapshots). */
  readonly snapshots: boolean;
  readonly snapshotSchedule: string;
  readonly snapshotRetain: number;
  /** /metrics and /health on http://<private address>:2381 (opt out with --no-metrics). */
  readonly metrics: boolean;
  /** DNS-member mode: where a member reads its listen address (--listen-from, --listen-cidr); undefined by IP and for the default (DigitalOcean's metadata). */
  readonly listenFrom: ListenFrom | undefined;
  /** Off-site copies of the snapshots (--backup-url); the key pair is added by the command (backupCredentials). */
  readonly backup: BackupSettings | undefined;
  /** The bucket key pair, from the environment or the cluster folder; never in cluster.json. */
  readonly backupCredentials?: BackupCredentials;
  /** --client: a client certificate for each name (CN=name), kept in the folder, never sent to a node. */
  readonly clients: readonly string[];
  /** --kubernetes: mint kube-apiserver-etcd-client and write the kit in kubernetes/. */
  readonly kubernetes: boolean;
  /** --k8s-pki-dir: where the kit's files go on a control-plane node. */
  readonly k8sPkiDir: string;
}

/** Where the leader uploads each snapshot, and how many the bucket keeps. */
export interface BackupSettings extends BackupTarget {
  readonly retain: number;
}

export { DEFAULT_BACKUP_RETAIN, DEFAULT_SNAPSHOT_RETAIN, DEFAULT_SNAPSHOT_SCHEDULE } from './defaults.js';

/** The raw document, keyed as in cluster.yaml and the flags. */
type RawInput = Record<string, unknown>;

/** Flags that map one-to-one onto schema keys. */
const LIST_KEYS = ['ips', 'names', 'hostnames'] as const;
const SCALAR_KEYS = ['cluster-name', 'domain', 'client-endpoint', 'out', 'etcd-version', 'release-url', 'etcd-sha256', 'install', 'key-type', 'snapshot-schedule', 'defrag-schedule', 'backup-url', 'backup-endpoint', 'backup-region', 'k8s-pki-dir', 'listen-from', 'listen-cidr'] as const;
const NUMBER_KEYS = ['key-size', 'cert-days', 'snapshot-retain', 'heartbeat-interval', 'election-timeout', 'backup-retain', 'quota-backend-bytes', 'defrag-threshold'] as const;
const BOOLEAN_KEYS = ['allow-even', 'kubernetes'] as const;
/** Repeatable flags that may also be comma-separated. */
const REPEATED_KEYS = ['client'] as const;

/** A cluster config is a few hundred bytes; anything near this is a wrong file (or /dev/zero). */
export const CONFIG_MAX_BYTES = 1024 * 1024;

/** Reads `--config`; `path` is as the user wrote it, resolved against `cwd`. */
export function loadConfigFile(path: string, cwd: string): RawInput {
  let bytes: Buffer;
  try {
    bytes = readAtMost(resolve(cwd, path), CONFIG_MAX_BYTES + 1);
  } catch (error) {
    throw usageError('parse', `config: cannot read ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  if (bytes.length > CONFIG_MAX_BYTES) {
    throw usageError('parse', `config: ${JSON.stringify(path)} is larger than 1 MiB (${CONFIG_MAX_BYTES} bytes); is it the right file?`);
  }
  const text = bytes.toString('utf8');
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw usageError('parse', `config: ${JSON.stringify(path)} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw usageError('validate', `config: ${JSON.stringify(path)} must be a mapping of option names to values`);
  }
  return document as RawInput;
}

/** The first `limit` bytes of a file; reading stops there, so a huge file or a device that never ends costs nothing. */
function readAtMost(path: string, limit: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(limit);
    let length = 0;
    while (length < limit) {
      const read = readSync(fd, buffer, length, limit - length, null);
      if (read === 0) break;
      length += read;
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** Flags as schema-shaped values; a number flag that is not a number stays a string so the error shows it. */
export function flagsToRawInput(flags: ParsedOptions): RawInput {
  const raw: RawInput = {};
  for (const key of LIST_KEYS) {
    const value = flags[key];
    if (typeof value === 'string') raw[key] = value.split(',').map((item) => item.trim());
  }
  for (const key of SCALAR_KEYS) {
    if (typeof flags[key] === 'string') raw[key] = flags[key];
  }
  for (const key of NUMBER_KEYS) {
    const value = flags[key];
    if (typeof value === 'string') raw[key] = /^\d+$/.test(value) ? Number(value) : value;
  }
  for (const key of BOOLEAN_KEYS) {
    if (flags[key] === true) raw[key] = true;
  }
  for (const key of REPEATED_KEYS) {
    const value = flags[key];
    const items = Array.isArray(value) ? value : typeof value === 'string' ? [value] : undefined;
    if (items) raw[key] = items.flatMap((item) => item.split(',')).map((item) => item.trim());
  }
  // A negative flag for a key whose default is true.
  if (flags['no-snapshots'] === true) raw.snapshots = false;
  if (flags['no-metrics'] === true) raw.metrics = false;
  if (flags['no-defrag'] === true) raw.defrag = false;
  const etcdOptions = flags['etcd-option'];
  if (etcdOptions !== undefined) {
    try {
      raw['etcd-options'] = parseEtcdOptionFlags(Array.isArray(etcdOptions) ? etcdOptions : [String(etcdOptions)]);
    } catch (error) {
      if (error instanceof EtcdOptionError) throw usageError('validate', `etcd-option: ${error.message}`);
      throw error;
    }
  }
  return raw;
}

let compiledValidator: ReturnType<typeof compileSchema> | undefined;

function schemaValidator() {
  compiledValidator ??= compileSchema(clusterSchema);
  return compiledValidator;
}

function describeSchemaError(error: ErrorObject): string {
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    const where = fieldName(error.instancePath);
    return `${where ? `${where}.` : ''}${extra}: unknown option`;
  }
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return `${fieldName(error.instancePath)}.${missing}: is required`;
  }
  const field = fieldName(error.instancePath) || 'config';
  const value = quoted(error.data);
  if (error.keyword === 'minItems') return `${field}: at least ${(error.params as { limit: number }).limit} member is required`;
  if (error.keyword === 'maxItems') {
    return `${field}: ${(error.data as unknown[]).length} members given; a cluster has 1 to 9 members (more slows every write and adds no useful fault tolerance)`;
  }
  const custom = (error.parentSchema as { errorMessage?: string } | undefined)?.errorMessage;
  if (custom) return `${field}: ${value} ${custom}`;
  return `${field}: ${value} ${error.message ?? 'is invalid'}`;
}

/** Settings an existing cluster.json recorded (record-codec.ts): a re-run keeps them unless the config or a flag sets them. */
export type RecordedSettings = Partial<Pick<ClusterInput, 'keyType' | 'keySize' | 'install' | 'metrics' | 'quotaBackendBytes' | 'etcdOptions' | 'defrag' | 'defragSchedule' | 'defragThreshold'>>;

export interface ResolvedInput {
  readonly input: ClusterInput;
  /** Non-fatal findings, printed before the work starts. */
  readonly warnings: readonly string[];
}

/**
 * Merges the config file with the flags (flags win), validates against the schema and then the
 * rules a schema cannot say (counts, uniqueness, address kinds). What neither sets comes from
 * `recorded` (a re-run's cluster.json), then the defaults. Throws a usage error on the first problem.
 */
export function resolveClusterInput(fileInput: RawInput, flagInput: RawInput, recorded: RecordedSettings = {}): ResolvedInput {
  const raw: RawInput = { ...fileInput, ...flagInput };
  // --etcd-option adds to (or overrides single keys of) the config's etcd-options.
  if (isMapping(fileInput['etcd-options']) && isMapping(flagInput['etcd-options'])) raw['etcd-options'] = { ...fileInput['etcd-options'], ...flagInput['etcd-options'] };
  // Flags that list members replace a config's members list (and each other's sources) entirely.
  const flagSources = (['ips', 'hostnames', 'domain'] as const).filter((key) => flagInput[key] !== undefined);
  if (flagSources.length > 0 || flagInput.names !== undefined) delete raw.members;
  for (const key of ['ips', 'hostnames', 'domain'] as const) {
    if (flagSources.length > 0 && !flagSources.includes(key)) delete raw[key];
  }
  // --listen-cidr on the command line means cidr whatever the config said; another --listen-from drops the config's range.
  if (flagInput['listen-cidr'] !== undefined && flagInput['listen-from'] === undefined) delete raw['listen-from'];
  if (flagInput['listen-from'] !== undefined && flagInput['listen-cidr'] === undefined && flagInput['listen-from'] !== 'cidr') delete raw['listen-cidr'];
  const validate = schemaValidator();
  if (!validate(raw)) {
    const first = validate.errors?.[0];
    throw usageError('validate', first ? describeSchemaError(first) : 'input is invalid');
  }
  checkConsumerRules(raw);
  const clusterName = (raw['cluster-name'] as string | undefined) ?? DEFAULT_CLUSTER_NAME;
  const members = resolveMembers(raw, clusterName);
  const allowEven = raw['allow-even'] === true;
  if (members.length % 2 === 0 && !allowEven) {
    const count = members.length;
    const tolerated = count / 2 - 1;
    throw usageError(
      'validate',
      `ips: ${count} members is an even count: it tolerates ${plural(tolerated, 'failed member')}, the same as ${plural(count - 1, 'member')}, while one more vote is needed for quorum; use ${count - 1} or ${count + 1} members, or pass --allow-even`,
    );
  }
  const metrics = (raw.metrics as boolean | undefined) ?? recorded.metrics ?? true;
  const warnings: string[] = [];
  for (const [index, member] of members.entries()) {
    if (member.ip !== undefined && !isPrivateOrLoopback(member.ip)) {
      warnings.push(
        `ips[${index}]: ${JSON.stringify(member.ip)} is a public address; etcd will listen on it, so firewall ports 2379-2380 to the cluster's own addresses${metrics ? ', and 2381 (metrics, plain HTTP) to your Prometheus' : ''}`,
      );
    }
  }
  const install = (raw.install as InstallMode | undefined) ?? recorded.install ?? DEFAULT_INSTALL_MODE;
  if (install === 'baked') {
    // A pinned checksum that would silently check nothing is refused; a release URL is only unused.
    if (raw['etcd-sha256'] !== undefined) throw bakedChecksumError(raw.install === 'baked' ? '' : ' (as cluster.json recorded)');
    if (raw['release-url'] !== undefined) {
      warnings.push('release-url: ignored with install: baked (the release was fetched and verified when the image was baked)');
    }
  }
  const keyType = (raw['key-type'] as KeyType | undefined) ?? recorded.keyType ?? DEFAULT_KEY_TYPE;
  if (keyType !== 'rsa' && raw['key-size'] !== undefined) throw keySizeError(raw['key-size'], keyType);
  const heartbeat = (raw['heartbeat-interval'] as number | undefined) ?? ETCD_HEARTBEAT_INTERVAL_MS;
  const election = (raw['election-timeout'] as number | undefined) ?? ETCD_ELECTION_TIMEOUT_MS;
  if (election < 5 * heartbeat) {
    // etcd refuses to start otherwise: a follower must miss several heartbeats before it calls an election.
    throw usageError('validate', `election-timeout: ${election} must be at least 5 times heartbeat-interval (${heartbeat}), i.e. at least ${5 * heartbeat}`);
  }
  const domain = raw.domain as string | undefined;
  const clientEndpoint = (raw['client-endpoint'] as string | undefined)?.toLowerCase() ?? defaultClientEndpoint(clusterName, domain);
  const clashing = members.find((member) => member.hostname === clientEndpoint);
  if (clientEndpoint !== undefined && clashing) {
    throw usageError('validate', `client-endpoint: ${JSON.stringify(clientEndpoint)} is member ${clashing.name}'s own name; the cluster's name must outlive every member`);
  }
  const input: ClusterInput = {
    clusterName,
    members,
    domain,
    clientEndpoint,
    out: (raw.out as string | undefined) ?? DEFAULT_OUT,
    etcdVersion: (raw['etcd-version'] as string | undefined) ?? DEFAULT_ETCD_VERSION,
    releaseUrl: ((raw['release-url'] as string | undefined) ?? DEFAULT_RELEASE_URL).replace(/\/+$/, ''),
    etcdSha256: raw['etcd-sha256'] as string | undefined,
    install,
    keyType,
    // A recorded size goes with its key type: another type starts from its own default.
    keySize: (raw['key-size'] as RsaKeySize | undefined) ?? (keyType === recorded.keyType ? recorded.keySize : undefined) ?? DEFAULT_RSA_KEY_SIZE,
    certDays: (raw['cert-days'] as number | undefined) ?? DEFAULT_CERT_DAYS,
    heartbeatIntervalMs: raw['heartbeat-interval'] as number | undefined,
    electionTimeoutMs: raw['election-timeout'] as number | undefined,
    // The schema bounds it: 16 MiB to etcd's documented maximum, 8 GiB (schema/cluster.schema.json).
    quotaBackendBytes: (raw['quota-backend-bytes'] as number | undefined) ?? recorded.quotaBackendBytes,
    ...resolveEtcdOptions(raw, recorded, (raw['etcd-version'] as string | undefined) ?? DEFAULT_ETCD_VERSION, flagInput['etcd-options'] !== undefined),
    ...resolveDefrag(raw, recorded),
    allowEven,
    snapshots: (raw.snapshots as boolean | undefined) ?? true,
    snapshotSchedule: (raw['snapshot-schedule'] as string | undefined) ?? DEFAULT_SNAPSHOT_SCHEDULE,
    snapshotRetain: (raw['snapshot-retain'] as number | undefined) ?? DEFAULT_SNAPSHOT_RETAIN,
    metrics,
    listenFrom: resolveListenFrom(raw, members),
    backup: resolveBackup(raw),
    ...resolveClients(raw),
  };
  return { input, warnings };
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** --etcd-option / etcd-options (else the recorded ones), checked against the cluster's etcd version. */
function resolveEtcdOptions(raw: RawInput, recorded: RecordedSettings, etcdVersion: string, fromFlag: boolean): Pick<ClusterInput, 'etcdOptions'> {
  const given = raw['etcd-options'] as Record<string, unknown> | undefined;
  try {
    return { etcdOptions: checkEtcdOptions(given ?? recorded.etcdOptions ?? {}, etcdVersion) };
  } catch (error) {
    if (!(error instanceof EtcdOptionError)) throw error;
    const field = given === undefined ? 'etcd-options (as cluster.json recorded)' : fromFlag ? 'etcd-option' : 'etcd-options';
    throw usageError('validate', `${field}: ${error.message}`);
  }
}

/** The defragmentation timer: on unless --no-defrag (or defrag: false), with its schedule and threshold. */
function resolveDefrag(raw: RawInput, recorded: RecordedSettings): Pick<ClusterInput, 'defrag' | 'defragSchedule' | 'defragThreshold'> {
  const defrag = (raw.defrag as boolean | undefined) ?? recorded.defrag ?? true;
  if (raw.defrag === false) {
    const stray = (['defrag-schedule', 'defrag-threshold'] as const).find((key) => raw[key] !== undefined);
    if (stray) throw usageError('validate', `${stray}: ${quoted(raw[stray])} sets the defragmentation timer, and it is off (--no-defrag); drop one of the two`);
  }
  return {
    defrag,
    defragSchedule: (raw['defrag-schedule'] as string | undefined) ?? recorded.defragSchedule ?? DEFAULT_DEFRAG_SCHEDULE,
    defragThreshold: (raw['defrag-threshold'] as number | undefined) ?? recorded.defragThreshold ?? DEFAULT_DEFRAG_THRESHOLD_PERCENT,
  };
}

/** Client names that a certificate's CN must not take: root is etcd's root user once auth is on (the admin certificate's CN). */
export const RESERVED_CLIENT_NAMES = ['root'];

/** --client, --kubernetes and --k8s-pki-dir; the schema checked each name's form. */
function resolveClients(raw: RawInput): Pick<ClusterInput, 'clients' | 'kubernetes' | 'k8sPkiDir'> {
  const clients = (raw.client as string[] | undefined) ?? [];
  const kubernetes = raw.kubernetes === true;
  for (const [index, name] of clients.entries()) {
    if (RESERVED_CLIENT_NAMES.includes(name)) {
      throw usageError('validate', `client[${index}]: ${quoted(name)} is reserved (CN root is etcd's root user: the admin certificate, pki/admin.crt); choose another client name`);
    }
    const earlier = clients.indexOf(name);
    if (earlier < index) throw usageError('validate', `client[${index}]: ${quoted(name)} is already used by client[${earlier}]`);
    if (kubernetes && name === KUBE_APISERVER_ETCD_CLIENT) {
      throw usageError('validate', `client[${index}]: ${quoted(name)} is minted by kubernetes already; drop it from client`);
    }
  }
  const pkiDir = raw['k8s-pki-dir'] as string | undefined;
  if (pkiDir !== undefined && !kubernetes) throw usageError('validate', `k8s-pki-dir: ${quoted(pkiDir)} is only used with kubernetes (--kubernetes); add it or drop k8s-pki-dir`);
  return { clients, kubernetes, k8sPkiDir: (pkiDir ?? DEFAULT_K8S_PKI_DIR).replace(/(.)\/+$/, '$1') };
}

/** --listen-from and --listen-cidr: DNS-member mode only; a range implies cidr, cidr needs a range. */
function resolveListenFrom(raw: RawInput, members: readonly MemberInput[]): ListenFrom | undefined {
  const from = raw['listen-from'] as ListenFrom['from'] | undefined;
  const cidr = raw['listen-cidr'] as string | undefined;
  const given = cidr !== undefined ? 'listen-cidr' : from !== undefined ? 'listen-from' : undefined;
  if (given === undefined) return undefined;
  if (members.some((member) => member.ip !== undefined)) {
    throw usageError('validate', `${given}: ${quoted(raw[given])} is for DNS-member mode (--hostnames or --domain); with ips etcd listens on each member's own address`);
  }
  if (cidr === undefined) {
    if (from === 'cidr') throw usageError('validate', 'listen-from: "cidr" needs listen-cidr, the range the address is in (for example --listen-cidr 10.0.0.0/8)');
    return { from: from! };
  }
  if (from !== undefined && from !== 'cidr') {
    throw usageError('validate', `listen-cidr: ${quoted(cidr)} is read only with listen-from cidr, and listen-from is ${quoted(from)}; drop one of the two`);
  }
  const [network = '', bits = ''] = cidr.split('/');
  const base = ipv4ToNumber(network);
  const size = 2 ** (32 - Number(bits));
  if (base % size !== 0) {
    throw usageError('validate', `listen-cidr: ${quoted(cidr)} has bits set after the /${bits} prefix; the range is ${numberToIpv4(base - (base % size))}/${bits}`);
  }
  return { from: 'cidr', cidr };
}

/** The settings a flag may change on an existing cluster's input (roll): the release, how nodes get it, the keys. */
export const SETTING_KEYS = ['etcd-version', 'release-url', 'install', 'etcd-sha256', 'key-type', 'key-size'] as const;

let settingsValidator: ReturnType<typeof compileSchema> | undefined;

/**
 * A validated input with some settings changed (`changes`, schema-shaped as flagsToRawInput makes
 * them), each checked with gen-userdata's schema entries and rules. A new key type starts from its
 * own defaults (an RSA cluster's key size does not follow it to ECDSA); --install baked drops the
 * download's URL and checksum.
 */
export function withSettingChanges(base: ClusterInput, changes: RawInput): ClusterInput {
  const properties = clusterSchema.properties as Record<string, unknown>;
  settingsValidator ??= compileSchema({ type: 'object', properties: Object.fromEntries(SETTING_KEYS.map((key) => [key, properties[key]])) });
  const picked: RawInput = Object.fromEntries(SETTING_KEYS.filter((key) => changes[key] !== undefined).map((key) => [key, changes[key]]));
  if (!settingsValidator(picked)) {
    const first = settingsValidator.errors?.[0];
    throw usageError('validate', first ? describeSchemaError(first) : 'settings are invalid');
  }
  checkConsumerRules(picked);
  const keyType = (picked['key-type'] as KeyType | undefined) ?? base.keyType;
  if (keyType !== 'rsa' && picked['key-size'] !== undefined) throw keySizeError(picked['key-size'], keyType);
  const baked = picked.install === 'baked';
  if (picked['etcd-sha256'] !== undefined && (picked.install ?? base.install) === 'baked') throw bakedChecksumError(baked ? '' : " (the cluster's install mode)");
  const etcdVersion = (picked['etcd-version'] as string | undefined) ?? base.etcdVersion;
  try {
    // The recorded options go to the new members' config: the target version must take every one.
    checkEtcdOptions(base.etcdOptions, etcdVersion);
  } catch (error) {
    if (!(error instanceof EtcdOptionError)) throw error;
    throw usageError('validate', `etcd-version: ${quoted(etcdVersion)} refuses an etcd option cluster.json records (etcdOptions): ${error.message}; nothing was changed`);
  }
  return {
    ...base,
    etcdVersion,
    install: (picked.install as InstallMode | undefined) ?? base.install,
    releaseUrl: ((picked['release-url'] as string | undefined) ?? (baked ? DEFAULT_RELEASE_URL : base.releaseUrl)).replace(/\/+$/, ''),
    etcdSha256: (picked['etcd-sha256'] as string | undefined) ?? (baked ? undefined : base.etcdSha256),
    keyType,
    keySize: (picked['key-size'] as RsaKeySize | undefined) ?? (keyType === base.keyType ? base.keySize : DEFAULT_RSA_KEY_SIZE),
  };
}

/** --etcd-sha256 pins a downloaded tarball; with --install baked nothing is downloaded, and the pin would be dropped without a word. */
function bakedChecksumError(whereBaked: string): Error {
  return usageError('validate', `etcd-sha256: cannot be combined with --install baked${whereBaked}: a baked image already has etcd and nothing is downloaded to check; drop --etcd-sha256, or use --install download`);
}

function keySizeError(keySize: unknown, keyType: KeyType): Error {
  return usageError('validate', `key-size: ${quoted(keySize)} is for RSA keys only, and key-type is ${keyType}; drop --key-size, or use --key-type rsa with it`);
}

const BACKUP_DETAIL_KEYS = ['backup-endpoint', 'backup-region', 'backup-retain'] as const;

let backupValidator: ReturnType<typeof compileSchema> | undefined;

/**
 * Only the backup-* keys (backups and restore take no members), checked with the same schema
 * entries and rules as gen-userdata's; undefined when backup-url is absent.
 */
export function resolveBackupInput(raw: RawInput): BackupSettings | undefined {
  const keys = ['backup-url', ...BACKUP_DETAIL_KEYS] as const;
  const properties = clusterSchema.properties as Record<string, unknown>;
  backupValidator ??= compileSchema({ type: 'object', properties: Object.fromEntries(keys.map((key) => [key, properties[key]])) });
  const picked = Object.fromEntries(keys.filter((key) => raw[key] !== undefined).map((key) => [key, raw[key]]));
  if (!backupValidator(picked)) {
    const first = backupValidator.errors?.[0];
    throw usageError('validate', first ? describeSchemaError(first) : 'backup options are invalid');
  }
  return resolveBackup(picked);
}

/** --backup-url and its details; the schema checked each value's form. */
function resolveBackup(raw: RawInput): BackupSettings | undefined {
  const url = raw['backup-url'] as string | undefined;
  if (url === undefined) {
    const stray = BACKUP_DETAIL_KEYS.find((key) => raw[key] !== undefined);
    if (stray) throw usageError('validate', `${stray}: ${quoted(raw[stray])} needs backup-url (s3://<bucket>/<prefix>) too`);
    return undefined;
  }
  if (raw.snapshots === false) {
    throw usageError('validate', `backup-url: ${quoted(url)} uploads the nodes' snapshots, and snapshots are off (--no-snapshots); drop one of the two`);
  }
  const { bucket, prefix } = parseBackupUrl(url)!;
  if (bucket.includes('..')) throw usageError('validate', `backup-url: ${quoted(url)} has no valid bucket name (two dots in a row)`);
  if (prefix.split('/').some((part, index, parts) => part === '.' || part === '..' || (part === '' && index < parts.length - 1))) {
    throw usageError('validate', `backup-url: ${quoted(url)} has an empty, . or .. segment in its prefix`);
  }
  const region = raw['backup-region'] as string | undefined;
  const endpoint = ((raw['backup-endpoint'] as string | undefined) ?? (region !== undefined ? spacesEndpoint(region) : undefined))?.replace(/\/+$/, '');
  if (endpoint === undefined) {
    throw usageError('validate', `backup-endpoint: is required with backup-url ${quoted(url)}; give --backup-region <slug> for DigitalOcean Spaces (e.g. nyc3), or --backup-endpoint (with --backup-region if the store checks it; default us-east-1) for another S3 store`);
  }
  const endpointProblem = endpointError(endpoint);
  if (endpointProblem !== undefined) throw usageError('validate', `backup-endpoint: ${quoted(raw['backup-endpoint'] ?? endpoint)} ${endpointProblem}`);
  return {
    bucket,
    prefix,
    endpoint,
    // Spaces accepts any region in signatures; other stores want theirs (AWS's default is us-east-1).
    region: region ?? 'us-east-1',
    retain: (raw['backup-retain'] as number | undefined) ?? DEFAULT_BACKUP_RETAIN,
  };
}

/** What the schema's patterns cannot say about the values that reach a node or a file: the consumer's own rules. */
function checkConsumerRules(raw: RawInput): void {
  const checks = [
    ['out', outError],
    ['release-url', releaseUrlError],
    ['snapshot-schedule', scheduleError],
    ['defrag-schedule', scheduleError],
  ] as const;
  for (const [key, check] of checks) {
    const value = raw[key];
    const problem = typeof value === 'string' ? check(value) : undefined;
    if (problem !== undefined) throw usageError('validate', `${key}: ${quoted(value)} ${problem}`);
  }
}

/** A value as messages show it: JSON, with C1 controls and Unicode line breaks escaped too, so no terminal acts on them. */
function quoted(value: unknown): string {
  return String(JSON.stringify(value)).replace(/[\u007f-\u009f\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * An absolute --out must be creatable: under no kernel interface (symlinks followed), below a folder.
 * A relative one is resolved against the working folder only when the folder is made.
 */
function outError(out: string): string | undefined {
  if (!isAbsolute(out)) return undefined;
  const target = resolve(out);
  const kernel = kernelFolderOf(target);
  if (kernel !== undefined) return `is under ${kernel}, a kernel interface, not a folder for files`;
  let existing = target;
  while (!existsSync(existing)) existing = dirname(existing);
  let real: string;
  try {
    real = realpathSync(existing);
  } catch (error) {
    return `cannot be used: ${JSON.stringify(existing)}: ${(error as NodeJS.ErrnoException).code ?? error}`;
  }
  if (!statSync(real).isDirectory()) return `cannot be created: ${JSON.stringify(existing)} is not a folder`;
  return undefined;
}

/**
 * Nodes fetch <release-url>/<version>/<file> with curl: a base URL with a host, nothing after the path,
 * and no password (every node's user-data would carry it, readable from the metadata service).
 */
function releaseUrlError(url: string): string | undefined {
  const [, authority = '', path = ''] = /^https?:\/\/([^/?#]*)(.*)$/.exec(url) ?? [];
  const at = authority.lastIndexOf('@');
  const host = authority.slice(at + 1).replace(/^(\[[^\]]*\]|[^:]*).*$/, '$1');
  if (host === '') return 'has no host (http(s)://host[:port]/path)';
  if (authority.slice(0, Math.max(at, 0)).includes(':')) {
    return "holds a password; every node's user-data would carry it: use a mirror that needs none (restrict it by network instead)";
  }
  if (path.includes('#')) return 'has a fragment (#...); give the base URL that holds the <version>/ folders';
  if (path.includes('?')) return 'has a query (?...); nodes append /<version>/<file> to it, so give a plain base URL';
  try {
    new URL(url);
  } catch {
    return 'is not a valid URL (check the host and port)';
  }
  return undefined;
}

/**
 * The S3 endpoint, beyond the schema's http(s)://host[:port] form: what the URL parser, the SDK and
 * the node's curl would refuse or read differently later (a port out of range, an empty DNS
 * label, `1.2.3` read as the address 1.2.0.3).
 */
function endpointError(endpoint: string): string | undefined {
  const [, host = '', port] = /^https?:\/\/([^/:]*)(?::(\d+))?\/?$/.exec(endpoint) ?? [];
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) return `has port ${port}, outside 1 to 65535`;
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    return 'is not a valid URL (check the host and port)';
  }
  const labels = host.split('.');
  if (labels.some((label) => label === '' || label.length > 63 || label.startsWith('-') || label.endsWith('-'))) {
    return 'has no valid host name (an empty label, a label over 63 characters, or one starting or ending with -)';
  }
  if (parsed.hostname !== host.toLowerCase()) return `has a host the URL parser reads as ${parsed.hostname}, not as written; give the address in full (a.b.c.d)`;
  return undefined;
}

function scheduleError(schedule: string): string | undefined {
  if (isCalendarExpression(schedule)) return undefined;
  return 'is not a systemd calendar expression (see systemd.time(7); check one with systemd-analyze calendar); for example hourly, Mon..Fri 02:00 or *-*-* 00/6:00:00';
}

/** Member certificates are pki/<name>.crt: these names belong to the CA and the admin certificate. */
export const RESERVED_MEMBER_NAMES = ['ca', 'admin'];

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The stable client name a cluster with a domain gets: `<cluster-name>.<domain>` (create-droplets makes its records). */
export function defaultClientEndpoint(clusterName: string, domain: string | undefined): string | undefined {
  return domain !== undefined ? `${clusterName}.${domain}` : undefined;
}

/** DNS-member mode's derived name, shared by gen-userdata --domain and create-droplets. */
export function memberHostname(clusterName: string, memberName: string, domain: string): string {
  return `${clusterName}-${memberName}.${domain}`;
}

const MEMBER_SOURCES = ['ips', 'hostnames', 'domain', 'members'] as const;

function resolveMembers(raw: RawInput, clusterName: string): MemberInput[] {
  const given = MEMBER_SOURCES.filter((key) => raw[key] !== undefined);
  if (given.length > 1) {
    throw usageError('validate', `${given[1]}: give members one way only (${given.join(' and ')} were both given)`);
  }
  if (raw.hostnames !== undefined || raw.domain !== undefined) return resolveHostnameMembers(raw, clusterName);
  let members: { name: string; ip: string }[];
  let source: string;
  if (raw.ips !== undefined) {
    const ips = raw.ips as string[];
    const names = raw.names as string[] | undefined;
    if (names !== undefined && names.length !== ips.length) {
      throw usageError('validate', `names: ${names.length} names given for ${ips.length} addresses in ips; give one name per address`);
    }
    members = ips.map((ip, index) => ({ ip, name: names?.[index] ?? `etcd${index + 1}` }));
    source = 'ips';
  } else if (raw.members !== undefined) {
    if (raw.names !== undefined) throw usageError('validate', 'names: only valid with ips; set name on each entry of members instead');
    members = (raw.members as { name?: string; ip: string }[]).map((member, index) => ({
      ip: member.ip,
      name: member.name ?? `etcd${index + 1}`,
    }));
    source = 'members';
  } else {
    throw usageError('validate', 'ips: is required (for example --ips 10.10.0.11,10.10.0.12,10.10.0.13), or give members in --config');
  }
  const ipField = (index: number) => (source === 'ips' ? `ips[${index}]` : `members[${index}].ip`);
  const nameField = (index: number) => (source === 'ips' ? `names[${index}]` : `members[${index}].name`);
  for (const [index, member] of members.entries()) {
    if (!isUnicastIPv4(member.ip)) {
      throw usageError('validate', `${ipField(index)}: ${JSON.stringify(member.ip)} is not a unicast host address`);
    }
    const earlier = members.findIndex((other) => other.ip === member.ip);
    if (earlier < index) throw usageError('validate', `${ipField(index)}: ${JSON.stringify(member.ip)} is already used by ${ipField(earlier)}`);
    if (RESERVED_MEMBER_NAMES.includes(member.name)) {
      throw usageError('validate', `${nameField(index)}: ${JSON.stringify(member.name)} is reserved for pki/${member.name}.crt; choose another member name`);
    }
    const earlierName = members.findIndex((other) => other.name === member.name);
    if (earlierName < index) {
      throw usageError('validate', `${nameField(index)}: ${JSON.stringify(member.name)} is already used by ${nameField(earlierName)}`);
    }
  }
  return members;
}

/** DNS-member mode: --hostnames (one per member) or --domain with --names (default etcd1..etcd3). */
function resolveHostnameMembers(raw: RawInput, clusterName: string): MemberInput[] {
  const names = raw.names as string[] | undefined;
  let members: { name: string; hostname: string }[];
  let field: (index: number) => string;
  if (raw.hostnames !== undefined) {
    const hostnames = raw.hostnames as string[];
    if (names !== undefined && names.length !== hostnames.length) {
      throw usageError('validate', `names: ${names.length} names given for ${hostnames.length} hostnames; give one name per hostname`);
    }
    members = hostnames.map((hostname, index) => ({ hostname, name: names?.[index] ?? `etcd${index + 1}` }));
    field = (index) => `hostnames[${index}]`;
  } else {
    const domain = raw.domain as string;
    members = (names ?? Array.from({ length: DEFAULT_MEMBER_COUNT }, (_, index) => `etcd${index + 1}`)).map((name) => ({ name, hostname: memberHostname(clusterName, name, domain) }));
    field = (index) => `names[${index}]`;
    for (const [index, member] of members.entries()) {
      const label = member.hostname.split('.')[0]!;
      if (label.length > 63 || member.hostname.length > 253) {
        throw usageError('validate', `${field(index)}: ${JSON.stringify(member.hostname)} is too long for a DNS name (labels of at most 63, names of at most 253 characters)`);
      }
    }
  }
  for (const [index, member] of members.entries()) {
    const earlier = members.findIndex((other) => other.hostname === member.hostname);
    if (earlier < index) throw usageError('validate', `${field(index)}: ${JSON.stringify(member.hostname)} is already used by ${field(earlier)}`);
    if (RESERVED_MEMBER_NAMES.includes(member.name)) {
      throw usageError('validate', `names[${index}]: ${JSON.stringify(member.name)} is reserved for pki/${member.name}.crt; choose another member name`);
    }
    const earlierName = members.findIndex((other) => other.name === member.name);
    if (earlierName < index) {
      throw usageError('validate', `names[${index}]: ${JSON.stringify(member.name)} is already used by names[${earlierName}]`);
    }
  }
  return members;
}
