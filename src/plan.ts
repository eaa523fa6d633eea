import { createHash } from 'node:crypto';
import { KUBE_APISERVER_ETCD_CLIENT, type BackupSettings, type ClusterInput, type ListenFrom } from './input.js';
import { isLoopback } from './ipv4.js';
import type { BackupCredentials, Secret } from './backup/target.js';
import { featuresOf, parseEtcdVersion, type EtcdFeatures } from './versions.js';
import { DEFAULT_LISTEN_FROM } from './defaults.js';
import { etcdConfigEntries } from './etcd-options.js';
import type { KeyType, RsaKeySize } from './keys.js';

export const CLIENT_PORT = 2379;
export const PEER_PORT = 2380;
/** etcd's --listen-metrics-urls: /metrics and /health over plain HTTP, for scrapers inside the network. */
export const METRICS_PORT = 2381;

/** Where things live on a node. The same for every member, so renewals and day-2 scripts can rely on it. */
export const NODE_PATHS = {
  binDir: '/usr/local/bin',
  configFile: '/etc/etcd/etcd.conf.yaml',
  /** DNS-member mode: the config with a placeholder for the listen address, filled in at each start. */
  configTemplate: '/etc/etcd/etcd.conf.yaml.in',
  listenAddressScript: '/usr/local/lib/etcd-cloudinit/listen-address.sh',
  listenAddressDropIn: '/etc/systemd/system/etcd.service.d/listen-address.conf',
  pkiDir: '/etc/etcd/pki',
  caCert: '/etc/etcd/pki/ca.crt',
  memberCert: '/etc/etcd/pki/member.crt',
  memberKey: '/etc/etcd/pki/member.key',
  dataDir: '/var/lib/etcd',
  unitFile: '/etc/systemd/system/etcd.service',
  installScript: '/usr/local/lib/etcd-cloudinit/install-etcd.sh',
  profileScript: '/etc/profile.d/etcdctl.sh',
  snapshotScript: '/usr/local/lib/etcd-cloudinit/etcd-snapshot.sh',
  snapshotService: '/etc/systemd/system/etcd-snapshot.service',
  snapshotTimer: '/etc/systemd/system/etcd-snapshot.timer',
  snapshotTmpfiles: '/etc/tmpfiles.d/etcd-snapshot.conf',
  defragScript: '/usr/local/lib/etcd-cloudinit/etcd-defrag.sh',
  defragService: '/etc/systemd/system/etcd-defrag.service',
  defragTimer: '/etc/systemd/system/etcd-defrag.timer',
  backupDir: '/var/backups/etcd',
  backupUploadScript: '/usr/local/lib/etcd-cloudinit/etcd-backup-upload.sh',
  backupUploadService: '/etc/systemd/system/etcd-backup-upload.service',
  /** Root-only: the bucket key pair; etcd-snapshot.service gets it through systemd's LoadCredential=. */
  backupCredentials: '/etc/etcd-cloudinit/backup-credentials',
  restoreScript: '/usr/local/lib/etcd-cloudinit/etcd-restore.sh',
  /** Root-only: the presigned URL of the snapshot a restored member starts from. */
  restoreUrlFile: '/etc/etcd-cloudinit/restore-url',
  promoteScript: '/usr/local/lib/etcd-cloudinit/etcd-promote.sh',
  promoteService: '/etc/systemd/system/etcd-promote.service',
  /** The in-place certificate renewal agent (renew-certs); its pending new key lives in renewStateDir, next to the member key. */
  renewAgentScript: '/usr/local/lib/etcd-cloudinit/etcd-renew-agent.sh',
  renewAgentService: '/etc/systemd/system/etcd-renew-agent.service',
  renewAgentTimer: '/etc/systemd/system/etcd-renew-agent.timer',
  renewStateDir: '/etc/etcd/pki/renew',
  metadataLockdownScript: '/usr/local/lib/etcd-cloudinit/metadata-lockdown.sh',
  metadataLockdownService: '/etc/systemd/system/etcd-metadata-lockdown.service',
  user: 'etcd',
} as const;

export type NodePaths = typeof NODE_PATHS;

/** DigitalOcean's metadata service (169.254.169.254, as on most clouds): the droplet's own private IPv4, readable only from the droplet. */
export const DO_METADATA_ADDRESS = '169.254.169.254';
export const DO_PRIVATE_IPV4_METADATA_URL = `http://${DO_METADATA_ADDRESS}/metadata/v1/interfaces/private/0/ipv4/address`;

/** The instance-data key of the private IPv4: EC2's `local-ipv4` (also OpenStack's and others' EC2-style metadata). */
export const INSTANCE_DATA_IPV4_KEY = 'ds.meta_data.local_ipv4';

/**
 * Where etcd binds. `static`: the member address itself. `metadata` (DNS-member mode): listen URLs
 * must be IP addresses, and the address is only known on the machine, so the config carries
 * `placeholder` and the unit fills in the address found as `lookup` says (listen-address.sh's
 * SOURCE word: the metadata URL, `cidr:<range>` or `instance-data:<key>`) before each start.
 */
export type ListenAddressPlan =
  | { readonly source: 'static' }
  /** `address`: the metadata service's, which only root may reach once the node is set up (it serves the user-data). */
  | { readonly source: 'metadata'; readonly from: ListenFrom; readonly lookup: string; readonly placeholder: string; readonly address: string };

export interface MemberPlan {
  readonly name: string;
  /** What peers and clients dial: the IPv4, or the DNS name in DNS-member mode. */
  readonly host: string;
  /** Set when the member is addressed by IPv4. */
  readonly ip: string | undefined;
  /** Set in DNS-member mode. */
  readonly hostname: string | undefined;
  /** `https://<host>:2380`: advertised to peers. */
  readonly peerUrl: string;
  /** `https://<host>:2379`: advertised to clients. */
  readonly clientUrl: string;
  /** Addresses etcd binds for clients: the member address and loopback (for etcdctl on the node). */
  readonly listenClientUrls: readonly string[];
  /** The URL etcdctl on the node itself uses. */
  readonly localClientUrl: string;
  readonly listenPeerUrls: readonly string[];
  /** `http://<private address>:2381` (/metrics and /health in plain HTTP); empty with --no-metrics. */
  readonly listenMetricsUrls: readonly string[];
  /** `new` for the members that bootstrap the cluster; `existing` for one that add-member joins to it. */
  readonly initialClusterState: 'new' | 'existing';
  /**
   * Set for a member add-member joined as a learner: its etcd member ID (hex). The node then
   * promotes itself to a voting member once it has caught up with the leader.
   */
  readonly learnerId?: string;
}

/** Scheduled `etcdctl snapshot save` on every node (a systemd timer); undefined when opted out. */
export interface SnapshotPlan {
  /** systemd OnCalendar expression. */
  readonly schedule: string;
  /** Snapshots kept per node; older ones are deleted after each successful save. */
  readonly retain: number;
}

/** The node's defragmentation timer (etcd-defrag.sh); undefined when opted out (--no-defrag). */
export interface DefragPlan {
  /** systemd OnCalendar expression. */
  readonly schedule: string;
  /** Defragment when at least this whole percent of the database file is free space. */
  readonly thresholdPercent: number;
}

/** Off-site copies: after each snapshot the leader uploads it (etcd-backup-upload.sh). */
export interface BackupPlan extends BackupSettings {
  /** Needed to render user-data; a plan for reading the cluster (health) does without. */
  readonly credentials: BackupCredentials | undefined;
}

/**
 * A cluster restored from a snapshot in the bucket: every member downloads it at first boot,
 * checks its SHA-256 and restores it into an empty data dir before etcd's first start.
 */
export interface RestorePlan extends RestoredFrom {
  /** A GET URL that needs no credentials and expires; only in user-data (0600), never in cluster.json. */
  readonly url: Secret;
  readonly urlExpires: string;
}

/** Download mode: the node fetches the release at first boot and verifies it before installing. */
export interface DownloadInstallPlan {
  readonly mode: 'download';
  readonly version: string;
  readonly releaseUrl: string;
  /** A pinned checksum; when absent the node trusts SHA256SUMS from the same release URL. */
  readonly sha256: string | undefined;
}

/** Baked mode: the image already carries etcd (packer/etcd.pkr.hcl); the node only checks its version at boot. */
export interface BakedInstallPlan {
  readonly mode: 'baked';
  readonly version: string;
}

export type InstallPlan = DownloadInstallPlan | BakedInstallPlan;

/** A named client certificate (--client, or the --kubernetes preset); it never goes to a node. */
export interface ClientPlan {
  /** The certificate's CN and its file name: pki/clients/<name>.crt. */
  readonly name: string;
  /** `kubernetes`: kube-apiserver's certificate, with the subject kubeadm gives it. */
  readonly preset: 'kubernetes' | undefined;
}

/** --kubernetes: the kit in out/<cluster>/kubernetes/ for kubeadm, kube-apiserver and k3s. */
export interface KubernetesPlan {
  /** Where the user copies ca.crt and the client pair on each control-plane node; the kit's paths point there. */
  readonly pkiDir: string;
  /** The client (in plan.clients) whose certificate kube-apiserver presents. */
  readonly clientName: string;
}

/** Everything the later phases need, derived once; plain data, serialisable to cluster.json. */
export interface ClusterPlan {
  readonly clusterName: string;
  readonly members: readonly MemberPlan[];
  /** `--domain` clusters: members are `<cluster-name>-<member>.<domain>`, members added later too. */
  readonly domain: string | undefined;
  /** The stable client name every member certificate carries (issue 29). */
  readonly clientEndpoint: string | undefined;
  readonly listenAddress: ListenAddressPlan;
  /** Members serve /metrics and /health on listenMetricsUrls (--no-metrics turns it off). */
  readonly metrics: boolean;
  /** `etcd1=https://10.10.0.11:2380,...` */
  readonly initialCluster: string;
  readonly initialClusterToken: string;
  /** Client URLs of all members, comma-joined for ETCDCTL_ENDPOINTS. */
  readonly endpoints: string;
  readonly etcdVersion: string;
  readonly features: EtcdFeatures;
  readonly install: InstallPlan;
  /** Every key minted is of this type; keySize (RSA modulus bits) only counts for rsa. */
  readonly keyType: KeyType;
  readonly keySize: RsaKeySize;
  readonly certDays: number;
  /** Raft timing written to the etcd config only when the user set it. */
  readonly raftTiming: { readonly heartbeatIntervalMs: number | undefined; readonly electionTimeoutMs: number | undefined };
  /** etcd's quota-backend-bytes, written to the etcd config only when the user set it (etcd's default is 2 GiB). */
  readonly quotaBackendBytes: number | undefined;
  /** --etcd-option settings as checked against etcdVersion (src/etcd-options.ts): name -> value as written. */
  readonly etcdOptions: Readonly<Record<string, string>>;
  /** The same, as etcd's config file takes them (durations in nanoseconds): the template prints these. */
  readonly etcdConfigOptions: Readonly<Record<string, string | number | boolean>>;
  readonly defrag: DefragPlan | undefined;
  readonly caDays: number;
  /** Absolute folder the cluster is written to: `<out>/<cluster-name>` (ClusterFolder.dir). */
  readonly outDir: string;
  readonly node: NodePaths;
  readonly snapshots: SnapshotPlan | undefined;
  readonly backup: BackupPlan | undefined;
  /** Set only while `restore` makes the cluster; members joined later start empty and sync from peers. */
  readonly restore: RestorePlan | undefined;
  /** The snapshot a restored cluster started from, kept in cluster.json for as long as the cluster lives. */
  readonly restoredFrom: RestoredFrom | undefined;
  /** Day-2 plans: the names of members that left this cluster (cluster.json's retiredMembers, see planOf). */
  readonly retiredMembers?: readonly string[];
  /** Named client certificates, in order: --client names, then the --kubernetes preset's. */
  readonly clients: readonly ClientPlan[];
  readonly kubernetes: KubernetesPlan | undefined;
}

export interface RestoredFrom {
  readonly source: string;
  readonly sha256: string;
  readonly revision: number;
}

export const CA_DAYS = 3650;

/** Stands for the private IPv4 in the DNS-member config until the node fills it in; sed-safe. */
export const PRIVATE_IPV4_PLACEHOLDER = '@PRIVATE_IPV4@';

/** `outDir` is the cluster folder's absolute path, as ClusterFolder resolved it. */
export function planCluster(input: ClusterInput, outDir: string): ClusterPlan {
  const version = parseEtcdVersion(input.etcdVersion);
  if (!version) throw new Error(`unvalidated etcd version ${input.etcdVersion}`);
  const dnsMode = input.members.some((member) => member.hostname !== undefined);
  const listenAddress: ListenAddressPlan = dnsMode ? bootListenAddress(input.listenFrom ?? { from: DEFAULT_LISTEN_FROM }) : { source: 'static' };
  const members: MemberPlan[] = input.members.map(({ name, ip, hostname }) => {
    const host = ip ?? hostname;
    const clientUrl = `https://${host}:${CLIENT_PORT}`;
    // A member on a loopback address (a one-machine test cluster) must not also claim 127.0.0.1.
    const localClientUrl = ip !== undefined && isLoopback(ip) ? clientUrl : `https://127.0.0.1:${CLIENT_PORT}`;
    const bindHost = ip ?? PRIVATE_IPV4_PLACEHOLDER;
    return {
      name,
      host,
      ip,
      hostname,
      peerUrl: `https://${host}:${PEER_PORT}`,
      clientUrl,
      listenClientUrls: [...new Set([`https://${bindHost}:${CLIENT_PORT}`, localClientUrl])],
      localClientUrl,
      listenPeerUrls: [`https://${bindHost}:${PEER_PORT}`],
      listenMetricsUrls: input.metrics ? [`http://${bindHost}:${METRICS_PORT}`] : [],
      initialClusterState: 'new',
    };
  });
  const initialCluster = members.map((member) => `${member.name}=${member.peerUrl}`).join(',');
  return {
    clusterName: input.clusterName,
    members,
    domain: input.domain,
    clientEndpoint: input.clientEndpoint,
    listenAddress,
    metrics: input.metrics,
    initialCluster,
    initialClusterToken: clusterToken(input.clusterName, initialCluster),
    endpoints: members.map((member) => member.clientUrl).join(','),
    etcdVersion: input.etcdVersion,
    features: featuresOf(version),
    install: installPlanOf(input),
    keyType: input.keyType,
    keySize: input.keySize,
    certDays: input.certDays,
    raftTiming: { heartbeatIntervalMs: input.heartbeatIntervalMs, electionTimeoutMs: input.electionTimeoutMs },
    quotaBackendBytes: input.quotaBackendBytes,
    etcdOptions: input.etcdOptions,
    etcdConfigOptions: etcdConfigEntries(input.etcdOptions),
    defrag: input.defrag ? { schedule: input.defragSchedule, thresholdPercent: input.defragThreshold } : undefined,
    caDays: CA_DAYS,
    outDir,
    node: NODE_PATHS,
    snapshots: input.snapshots ? { schedule: input.snapshotSchedule, retain: input.snapshotRetain } : undefined,
    backup: input.backup ? { ...input.backup, credentials: input.backupCredentials } : undefined,
    restore: undefined,
    restoredFrom: undefined,
    clients: [
      ...input.clients.map((name) => ({ name, preset: undefined })),
      ...(input.kubernetes ? [{ name: KUBE_APISERVER_ETCD_CLIENT, preset: 'kubernetes' as const }] : []),
    ],
    kubernetes: input.kubernetes
      ? { pkiDir: input.k8sPkiDir, clientName: KUBE_APISERVER_ETCD_CLIENT }
      : undefined,
  };
}

/** How a node gets etcd: the release it downloads and verifies, or the one its image was baked with. */
export function installPlanOf(input: Pick<ClusterInput, 'install' | 'etcdVersion' | 'releaseUrl' | 'etcdSha256'>): InstallPlan {
  return input.install === 'baked'
    ? { mode: 'baked', version: input.etcdVersion }
    : { mode: 'download', version: input.etcdVersion, releaseUrl: input.releaseUrl, sha256: input.etcdSha256 };
}

/** DNS-member mode: the placeholder in the config, and the word that tells listen-address.sh where the address comes from. */
function bootListenAddress(from: ListenFrom): ListenAddressPlan {
  // The metadata service serves the user-data (with the member key) on every cloud that has one at this address: locked down in every case.
  return { source: 'metadata', from, lookup: listenLookup(from), placeholder: PRIVATE_IPV4_PLACEHOLDER, address: DO_METADATA_ADDRESS };
}

function listenLookup(from: ListenFrom): string {
  switch (from.from) {
    case 'do-metadata':
      return DO_PRIVATE_IPV4_METADATA_URL;
    case 'cidr':
      return `cidr:${from.cidr}`;
    case 'instance-data':
      return `instance-data:${INSTANCE_DATA_IPV4_KEY}`;
  }
}

/**
 * Unique per cluster name and membership, stable across re-runs: members of another cluster
 * (or an earlier incarnation with other addresses) cannot join by accident.
 * The initial-cluster-token of a cluster bootstrapped with this initial-cluster. Day-2 commands keep it as it was. */
export function clusterToken(clusterName: string, initialCluster: string): string {
  const digest = createHash('sha256').update(`${clusterName}\n${initialCluster}`).digest('hex');
  return `${clusterName}-${digest.slice(0, 16)}`;
}
