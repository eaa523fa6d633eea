import { X509Certificate } from 'node:crypto';
/**
 * The record codec: cluster.json (ClusterRecord, read and schema-checked by cluster-folder.ts) into
 * the validated input that planning takes (inputFromRecord), and a plan with its certificates back
 * into the record (clusterRecordOf). Day-2 commands change that input directly (members, a roll's
 * target) and plan it; nothing goes back through command-line option names.
 */
import { backupUrlOf, parseBackupUrl } from './backup/target.js';
import { CliError } from './errors.js';
import {
  clientCertificate,
  FOLDER_FILES,
  FOLDER_FORMAT_VERSION,
  recordKeyType,
  type CertificateRecord,
  type ClusterRecord,
  type MemberRecord,
  type RollTarget,
} from './cluster-folder.js';
import { DEFAULT_K8S_PKI_DIR, DEFAULT_SNAPSHOT_RETAIN, DEFAULT_SNAPSHOT_SCHEDULE, defaultClientEndpoint, type ClusterInput, type MemberInput, type RecordedSettings } from './input.js';
import { DEFAULT_RSA_KEY_SIZE } from './keys.js';
import { DEFAULT_DEFRAG_SCHEDULE, DEFAULT_DEFRAG_THRESHOLD_PERCENT } from './defaults.js';
import type { ClusterPki, IssuedCert } from './pki/mint.js';
import { installPlanOf, type ClusterPlan, type InstallPlan } from './plan.js';
import { DEFAULT_RELEASE_URL } from './versions.js';

/**
 * cluster.json as the input gen-userdata would have validated for it; `out` is the folder's --out.
 * What older folders lack reads as those releases behaved: no metrics, rsa keys, snapshots on.
 */
export function inputFromRecord(record: ClusterRecord, out: string): ClusterInput {
  const members = membersInput(record.members);
  const byName = members.every((member) => member.hostname !== undefined);
  const snapshots = record.snapshots;
  // A cluster's kubernetes client is minted by the preset: not a --client name.
  const clients = (record.clients ?? []).map((client) => client.name).filter((name) => name !== record.kubernetes?.client);
  return {
    clusterName: record.clusterName,
    members,
    domain: record.domain,
    // Recorded since issue 29; a cluster with a domain made before gets the default, so members minted from now on carry it.
    clientEndpoint: record.clientEndpoint ?? defaultClientEndpoint(record.clusterName, record.domain),
    out,
    ...installInput(record.etcdVersion, record.install),
    ...keyInput(record),
    certDays: record.certDays,
    heartbeatIntervalMs: record.raftTiming?.heartbeatIntervalMs,
    electionTimeoutMs: record.raftTiming?.electionTimeoutMs,
    quotaBackendBytes: record.quotaBackendBytes,
    etcdOptions: record.etcdOptions ?? {},
    // A cluster made before the timer existed has none: a member added or rolled in matches them.
    defrag: record.defrag !== undefined && record.defrag !== false,
    defragSchedule: record.defrag ? record.defrag.schedule : DEFAULT_DEFRAG_SCHEDULE,
    defragThreshold: record.defrag ? record.defrag.thresholdPercent : DEFAULT_DEFRAG_THRESHOLD_PERCENT,
    // Growing 3 -> 4 -> 5 passes through even counts; add-member warns instead.
    allowEven: true,
    snapshots: snapshots !== false,
    snapshotSchedule: snapshots ? snapshots.schedule : DEFAULT_SNAPSHOT_SCHEDULE,
    snapshotRetain: snapshots ? snapshots.retain : DEFAULT_SNAPSHOT_RETAIN,
    // Members of a cluster made before metrics existed have none: a member added or rolled in matches them.
    metrics: record.metrics ?? false,
    // Members added later find their address the way the first ones did.
    listenFrom: byName ? record.listenFrom : undefined,
    // A restored cluster's members joined later start empty and sync from their peers: no restoredFrom here.
    backup: record.backup
      ? { ...parseBackupUrl(record.backup.url)!, endpoint: record.backup.endpoint.replace(/\/+$/, ''), region: record.backup.region, retain: record.backup.retain }
      : undefined,
    clients,
    kubernetes: record.kubernetes !== undefined,
    k8sPkiDir: (record.kubernetes?.pkiDir ?? DEFAULT_K8S_PKI_DIR).replace(/(.)\/+$/, '$1'),
  };
}

/**
 * What a gen-userdata re-run keeps from cluster.json unless told otherwise: the key type (and an
 * RSA key size), the install mode, metrics, the quota, the etcd options and the defragmentation timer. A field older folders lack is no recorded choice.
 */
export function recordedSettings(record: ClusterRecord): RecordedSettings {
  const { keyType, keySize } = keyInput(record);
  return {
    keyType,
    ...(keyType === 'rsa' ? { keySize } : {}),
    install: record.install.mode === 'baked' ? 'baked' : 'download',
    ...(record.metrics !== undefined ? { metrics: record.metrics } : {}),
    ...(record.quotaBackendBytes !== undefined ? { quotaBackendBytes: record.quotaBackendBytes } : {}),
    ...(record.etcdOptions !== undefined ? { etcdOptions: record.etcdOptions } : {}),
    ...(record.defrag === false ? { defrag: false } : {}),
    ...(record.defrag ? { defrag: true, defragSchedule: record.defrag.schedule, defragThreshold: record.defrag.thresholdPercent } : {}),
  };
}

/** Members as cluster.json (or roll.json) records them, as the input takes them: all by IPv4, or all by DNS name. */
export function membersInput(members: readonly MemberRecord[]): MemberInput[] {
  const byName = members.every((member) => member.hostname !== undefined);
  if (!byName && members.some((member) => member.ip === undefined)) {
    throw new CliError('parse', 'cluster.json: members mixes addresses and DNS names; was it written by etcd-cloudinit?');
  }
  return members.map((member) => (byName ? { name: member.name, hostname: member.hostname! } : { name: member.name, ip: member.ip! }));
}

/**
 * cluster.json's retired members once the cluster has `members`: those it had before, plus every
 * member of the record that is no longer one, minus any that is one (a roll re-adding the
 * replacement it rolled back). So every command that drops a member records it, in the same write.
 */
export function retiredMembersAfter(record: ClusterRecord, members: readonly { readonly name: string }[]): string[] {
  const current = new Set(members.map((member) => member.name));
  const retired = [...(record.retiredMembers ?? []), ...record.members.map((member) => member.name)];
  return [...new Set(retired.filter((name) => !current.has(name)))];
}

/** The input with these members (cluster.json's, one more, one fewer). */
export function withMembers(input: ClusterInput, members: readonly MemberRecord[]): ClusterInput {
  return { ...input, members: membersInput(members) };
}

/** A member added to a baked cluster boots from the same image: its user-data checks, never downloads. */
function installInput(etcdVersion: string, install: ClusterRecord['install']): Pick<ClusterInput, 'etcdVersion' | 'install' | 'releaseUrl' | 'etcdSha256'> {
  return install.mode === 'baked'
    ? { etcdVersion, install: 'baked', releaseUrl: DEFAULT_RELEASE_URL, etcdSha256: undefined }
    : { etcdVersion, install: 'download', releaseUrl: install.releaseUrl.replace(/\/+$/, ''), etcdSha256: install.sha256 };
}

/** The key size is for RSA keys only: an ECDSA cluster's record keeps the default, which is no choice. */
function keyInput(record: { readonly keyType?: ClusterRecord['keyType']; readonly keySize: ClusterRecord['keySize'] }): Pick<ClusterInput, 'keyType' | 'keySize'> {
  const keyType = recordKeyType(record);
  return { keyType, keySize: keyType === 'rsa' ? record.keySize : DEFAULT_RSA_KEY_SIZE };
}

/** The input with a roll's target (roll.json): what the replacements are rendered with. */
export function withRollTarget(input: ClusterInput, target: RollTarget): ClusterInput {
  return { ...input, ...installInput(target.etcdVersion, target.install), ...keyInput(target) };
}

/** A roll's target as roll.json keeps it (without droplet settings): the input's release, install mode and keys. */
export function rollTargetOf(input: ClusterInput): RollTarget {
  return { etcdVersion: input.etcdVersion, install: installRecord(installPlanOf(input)), keyType: input.keyType, keySize: input.keySize };
}

/** The install plan as cluster.json keeps it. */
export function installRecord(install: InstallPlan): ClusterRecord['install'] {
  return install.mode === 'baked'
    ? { mode: 'baked', version: install.version }
    : { mode: 'download', version: install.version, releaseUrl: install.releaseUrl, ...(install.sha256 ? { sha256: install.sha256 } : {}) };
}

function certificateRecord(cert: IssuedCert): CertificateRecord {
  return { file: FOLDER_FILES.cert(cert.fileBase), sha256Fingerprint: cert.sha256Fingerprint, serial: new X509Certificate(cert.certPem).serialNumber, notAfter: cert.notAfter };
}

/** cluster.json for a plan and its certificates: what was generated, for the operator and for every later command. */
export function clusterRecordOf(plan: ClusterPlan, pki: ClusterPki, generatedAt: Date): ClusterRecord {
  return {
    formatVersion: FOLDER_FORMAT_VERSION,
    clusterName: plan.clusterName,
    etcdVersion: plan.etcdVersion,
    install: installRecord(plan.install),
    initialCluster: plan.initialCluster,
    initialClusterToken: plan.initialClusterToken,
    endpoints: plan.members.map((member) => member.clientUrl),
    ...(plan.domain !== undefined ? { domain: plan.domain } : {}),
    ...(plan.clientEndpoint !== undefined ? { clientEndpoint: plan.clientEndpoint } : {}),
    keyType: plan.keyType,
    keySize: plan.keySize,
    certDays: plan.certDays,
    raftTiming: plan.raftTiming,
    ...(plan.quotaBackendBytes !== undefined ? { quotaBackendBytes: plan.quotaBackendBytes } : {}),
    ...(Object.keys(plan.etcdOptions).length > 0 ? { etcdOptions: { ...plan.etcdOptions } } : {}),
    defrag: plan.defrag ? { schedule: plan.defrag.schedule, thresholdPercent: plan.defrag.thresholdPercent } : false,
    snapshots: plan.snapshots ?? false,
    metrics: plan.metrics,
    ...(plan.listenAddress.source === 'metadata' ? { listenFrom: plan.listenAddress.from } : {}),
    ...(plan.backup
      ? { backup: { url: backupUrlOf(plan.backup), endpoint: plan.backup.endpoint, region: plan.backup.region, retain: plan.backup.retain } }
      : {}),
    ...(plan.restoredFrom ? { restoredFrom: plan.restoredFrom } : {}),
    members: plan.members.map((member) => ({
      name: member.name,
      ...(member.ip !== undefined ? { ip: member.ip } : { hostname: member.hostname! }),
      peerUrl: member.peerUrl,
      clientUrl: member.clientUrl,
      userData: FOLDER_FILES.userData(member.name),
      certificate: certificateRecord(pki.members.get(member.name)!),
    })),
    ...(plan.retiredMembers !== undefined && plan.retiredMembers.length > 0 ? { retiredMembers: [...plan.retiredMembers] } : {}),
    ca: certificateRecord(pki.ca),
    admin: certificateRecord(pki.admin),
    ...(plan.clients.length > 0
      ? { clients: plan.clients.map((client) => ({ name: client.name, certificate: certificateRecord(clientCertificate(pki, client.name)) })) }
      : {}),
    ...(plan.kubernetes ? { kubernetes: { pkiDir: plan.kubernetes.pkiDir, client: plan.kubernetes.clientName } } : {}),
    generatedAt: generatedAt.toISOString(),
  };
}
