/**
 * Every command's options: parsing and `--help` both read them from here. Each default a
 * description states comes from defaults.ts (or the module that applies it), never a literal.
 * test/help-defaults.test.ts checks every one against the code. This module imports
 * nothing heavy, so the command table (and so `--help`) loads without any command's code.
 */
import { FOLDER_FILES } from '../cluster-folder.js';
import { DEFAULT_IMAGE, DEFAULT_SIZE, DEFAULT_TTL } from '../digitalocean/members.js';
import type { OptionSpec } from '../options.js';
import {
  DEFAULT_BACKUP_RETAIN,
  DEFAULT_CATCH_UP_SECONDS,
  DEFAULT_CERT_DAYS,
  DEFAULT_CLUSTER_NAME,
  DEFAULT_DEFRAG_SCHEDULE,
  DEFAULT_DEFRAG_THRESHOLD_PERCENT,
  DEFAULT_DROPLET_WAIT_SECONDS,
  DEFAULT_INSTALL_MODE,
  DEFAULT_K8S_PKI_DIR,
  DEFAULT_KEY_TYPE,
  DEFAULT_LISTEN_FROM,
  DEFAULT_MEMBER_COUNT,
  DEFAULT_OUT,
  DEFAULT_POLL_SECONDS,
  DEFAULT_RSA_KEY_SIZE,
  DEFAULT_SNAPSHOT_RETAIN,
  DEFAULT_BACKUP_TIMEOUT_SECONDS,
  DEFAULT_SNAPSHOT_SCHEDULE,
  DEFAULT_TIMEOUT_SECONDS,
  DEFAULT_URL_HOURS,
  DEFAULT_VPC_DELETE_WAIT_SECONDS,
  DEFAULT_WARN_DAYS,
  ETCD_ELECTION_TIMEOUT_MS,
  ETCD_HEARTBEAT_INTERVAL_MS,
  ETCD_QUOTA_BACKEND_BYTES,
} from '../defaults.js';
import { DEFAULT_ETCD_VERSION, DEFAULT_RELEASE_URL } from '../versions.js';

/** What every command takes: how to print its result, its version, its help. The command table appends them. */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  { name: 'json', type: 'boolean', description: 'Print the result as one JSON document on stdout (its schema: schema/output/<command>.schema.json); progress goes to stderr' },
  { name: 'output', type: 'string', short: 'o', valueName: 'format', description: 'Output format: text (the default; table is the same) or json (as --json)' },
  { name: 'version', type: 'boolean', description: 'Print the version of etcd-cloudinit and exit' },
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

/** A command's own options followed by the common ones (a common option it declares itself is replaced). */
export function withCommonOptions(options: readonly OptionSpec[]): readonly OptionSpec[] {
  return [...options.filter((option) => !COMMON_OPTIONS.some((common) => common.name === option.name)), ...COMMON_OPTIONS];
}

/** Where a cluster's snapshots live off-site: gen-userdata, create-droplets, backups and restore share these. */
const BACKUP_TARGET_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'backup-url',
    type: 'string',
    valueName: 's3://bucket/prefix',
    description: 'After each snapshot the leader uploads it, with its SHA-256, to this bucket (key pair from SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY)',
  },
  { name: 'backup-region', type: 'string', valueName: 'slug', description: "The bucket's region, e.g. nyc3 (Spaces); create-droplets defaults to --region" },
  { name: 'backup-endpoint', type: 'string', valueName: 'url', description: 'S3 endpoint (default https://<backup-region>.digitaloceanspaces.com)' },
];

/** The cluster options shared by every command that generates a cluster's files. */
export const CLUSTER_OPTIONS: readonly OptionSpec[] = [
  { name: 'ips', type: 'string', valueName: 'a,b,c', description: 'Member IPv4 addresses, comma-separated (required unless --config gives members)' },
  { name: 'names', type: 'string', valueName: 'n1,n2,n3', description: 'Member names, one per address (default etcd1..etcdN)' },
  { name: 'hostnames', type: 'string', valueName: 'h1,h2,h3', description: 'DNS-member mode: one DNS name per member instead of --ips; you create the A records (see docs/digitalocean.md)' },
  { name: 'domain', type: 'string', valueName: 'zone', description: `DNS-member mode with names <cluster-name>-<member>.<zone> (members from --names, default etcd1..etcd${DEFAULT_MEMBER_COUNT})` },
  { name: 'cluster-name', type: 'string', valueName: 'name', description: `Cluster name: output folder and initial-cluster-token seed (default ${DEFAULT_CLUSTER_NAME})` },
  { name: 'config', type: 'string', valueName: 'file', description: 'Read options from a YAML file (keys as the flags, see schema/cluster.schema.json); flags override it' },
  { name: 'out', type: 'string', valueName: 'dir', description: `Output folder; files go to <dir>/<cluster-name>/ (default ${DEFAULT_OUT})` },
  { name: 'etcd-version', type: 'string', valueName: 'vX.Y.Z', description: `etcd release to install (or, with --install baked, the one the image must have), v3.4.x to v3.7.x (default ${DEFAULT_ETCD_VERSION})` },
  { name: 'release-url', type: 'string', valueName: 'url', description: `Base URL of etcd releases, e.g. a mirror (default ${DEFAULT_RELEASE_URL})` },
  {
    name: 'install',
    type: 'string',
    valueName: 'mode',
    description: `How nodes get etcd: download (fetch and verify the release at first boot) or baked (the image has it, see docs/packer.md; only its version is checked at boot) (default ${DEFAULT_INSTALL_MODE})`,
  },
  { name: 'etcd-sha256', type: 'string', valueName: 'hex', description: "Pin the tarball's SHA-256 instead of trusting the release's SHA256SUMS" },
  { name: 'key-type', type: 'string', valueName: 'type', description: `Type of every key minted: rsa, ecdsa-p256 or ecdsa-p384 (cheaper TLS handshakes; see docs/key-types.md) (default ${DEFAULT_KEY_TYPE})` },
  { name: 'key-size', type: 'string', valueName: 'bits', description: `RSA key size: 2048, 3072 or 4096 (default ${DEFAULT_RSA_KEY_SIZE}; only with --key-type rsa)` },
  { name: 'cert-days', type: 'string', valueName: 'days', description: `Member, admin and client certificate validity in days (default ${DEFAULT_CERT_DAYS}; the CA gets 10 years)` },
  { name: 'heartbeat-interval', type: 'string', valueName: 'ms', description: `Raft heartbeat interval in ms (default etcd's ${ETCD_HEARTBEAT_INTERVAL_MS}); raise with --election-timeout on slow or distant networks` },
  { name: 'election-timeout', type: 'string', valueName: 'ms', description: `Raft election timeout in ms (default etcd's ${ETCD_ELECTION_TIMEOUT_MS}; at least 5x the heartbeat interval)` },
  {
    name: 'quota-backend-bytes',
    type: 'string',
    valueName: 'bytes',
    description: `Database size at which etcd raises the NOSPACE alarm and refuses writes, 16777216 (16 MiB) to 8589934592 (8 GiB) (default etcd's ${ETCD_QUOTA_BACKEND_BYTES})`,
  },
  {
    name: 'etcd-option',
    type: 'string',
    multiple: true,
    valueName: 'key=value',
    description: "Another etcd setting for every member's config, from an allowlist checked for the etcd version (repeatable; docs/reference.md, etcd options)",
  },
  { name: 'allow-even', type: 'boolean', description: 'Allow an even member count (it adds no fault tolerance)' },
  { name: 'no-snapshots', type: 'boolean', description: 'Do not install the snapshot timer (etcdctl snapshot save into /var/backups/etcd) on the nodes' },
  { name: 'snapshot-schedule', type: 'string', valueName: 'calendar', description: `When nodes save a snapshot: a systemd OnCalendar expression (default ${DEFAULT_SNAPSHOT_SCHEDULE})` },
  { name: 'snapshot-retain', type: 'string', valueName: 'count', description: `Snapshots kept on each node (default ${DEFAULT_SNAPSHOT_RETAIN})` },
  { name: 'no-defrag', type: 'boolean', description: 'Do not install the defragmentation timer (defragments a member when enough of its database file is free) on the nodes' },
  { name: 'defrag-schedule', type: 'string', valueName: 'calendar', description: `When nodes consider defragmenting: a systemd OnCalendar expression, plus up to an hour of random delay (default ${DEFAULT_DEFRAG_SCHEDULE})` },
  { name: 'defrag-threshold', type: 'string', valueName: 'percent', description: `Defragment a member when at least this whole percent of its database file is free, 1 to 99 (default ${DEFAULT_DEFRAG_THRESHOLD_PERCENT})` },
  { name: 'no-metrics', type: 'boolean', description: 'Do not serve /metrics and /health on http://<private address>:2381 (plain HTTP, for Prometheus inside the network; docs/metrics.md)' },
  {
    name: 'listen-from',
    type: 'string',
    valueName: 'source',
    description: `DNS-member mode: where a member reads its private IPv4 at each start: do-metadata (DigitalOcean), cidr (with --listen-cidr) or instance-data (cloud-init query ds.meta_data.local_ipv4, e.g. AWS) (default ${DEFAULT_LISTEN_FROM})`,
  },
  { name: 'listen-cidr', type: 'string', valueName: 'cidr', description: 'DNS-member mode on any cloud: listen on the one address the host has inside this range, e.g. 10.0.0.0/8 (implies --listen-from cidr)' },
  {
    name: 'client-endpoint',
    type: 'string',
    valueName: 'name',
    description: "One DNS name for the cluster that clients use instead of the member list; every member certificate carries it (default with --domain: <cluster-name>.<zone>; create-droplets keeps its records)",
  },
  ...BACKUP_TARGET_OPTIONS,
  { name: 'client', type: 'string', multiple: true, valueName: 'name', description: 'Mint a client certificate with CN=<name> (clientAuth) in pki/clients/ for an application (repeat or comma-separate)' },
  {
    name: 'kubernetes',
    type: 'boolean',
    description: "Mint kube-apiserver-etcd-client and write kubernetes/: the pair, ca.crt, kubeadm's etcd.external snippet, kube-apiserver and k3s flags (see docs/kubernetes.md)",
  },
  { name: 'k8s-pki-dir', type: 'string', valueName: 'dir', description: `With --kubernetes: where you copy the kit's ca.crt and client pair on each control-plane node (default ${DEFAULT_K8S_PKI_DIR})` },
  { name: 'backup-retain', type: 'string', valueName: 'count', description: `Snapshots kept in the bucket; older ones are deleted after each upload (default ${DEFAULT_BACKUP_RETAIN})` },
  { name: 'force', type: 'boolean', description: 'Re-mint member, admin and client certificates and keys even if the existing ones still match, and rewrite a folder that add-member/remove-member changed (the CA is always kept)' },
];

const clusterOption = (name: string) => CLUSTER_OPTIONS.find((option) => option.name === name)!;

/** gen-userdata, create-droplets and restore: one member's user-data on stdout. */
const PRINT_MEMBER_OPTION: OptionSpec = { name: 'print', type: 'string', valueName: 'member', description: "Also write that member's user-data to stdout (the summary then goes to stderr)" };

export const GEN_USERDATA_OPTIONS: readonly OptionSpec[] = [
  ...CLUSTER_OPTIONS,
  PRINT_MEMBER_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

/** The options every command uses to find a cluster's folder. */
export const FOLDER_OPTIONS: readonly OptionSpec[] = [
  { name: 'cluster-name', type: 'string', valueName: 'name', description: `Cluster whose folder <out>/<cluster-name>/ to use (default ${DEFAULT_CLUSTER_NAME})` },
  { name: 'out', type: 'string', valueName: 'dir', description: `Output folder gen-userdata wrote to (default ${DEFAULT_OUT})` },
];

export const TIMEOUT_OPTION: OptionSpec = {
  name: 'timeout',
  type: 'string',
  valueName: 'seconds',
  description: `Give up on a member that does not answer within this many seconds (default ${DEFAULT_TIMEOUT_SECONDS})`,
};

/** backups and restore: the same --timeout, per S3 request (its retries included). */
const S3_TIMEOUT_OPTION: OptionSpec = {
  ...TIMEOUT_OPTION,
  description: `Give up on an S3 request (a listing page, a HEAD) that gets no full answer within this many seconds (default ${DEFAULT_TIMEOUT_SECONDS})`,
};

export const HEALTH_OPTIONS: readonly OptionSpec[] = [
  ...FOLDER_OPTIONS,
  { name: 'warn-days', type: 'string', valueName: 'days', description: `Fail when a member, admin or CA certificate expires within this many days (default ${DEFAULT_WARN_DAYS})` },
  { name: 'json', type: 'boolean', description: 'Print the report as JSON instead of a table' },
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const DEFRAG_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'dry-run',
    type: 'boolean',
    description: 'Check the members and print each step (compact, defragment each member, disarm), make none; when no member answers, print them and say what could not be checked',
  },
  ...FOLDER_OPTIONS,
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const DROPLET_WAIT_OPTIONS: readonly OptionSpec[] = [
  { name: 'wait-timeout', type: 'string', valueName: 'seconds', description: `On a create-droplets cluster: give up waiting for the new droplet to become active after this long (default ${DEFAULT_DROPLET_WAIT_SECONDS})` },
  { name: 'poll-interval', type: 'string', valueName: 'seconds', description: `On a create-droplets cluster: seconds between status checks while waiting (default ${DEFAULT_POLL_SECONDS})` },
];

export const ADD_MEMBER_OPTIONS: readonly OptionSpec[] = [
  { name: 'ip', type: 'string', valueName: 'address', description: "IP mode: the new member's IPv4 address (required)" },
  {
    name: 'hostname',
    type: 'string',
    valueName: 'name',
    description: "DNS-member mode: the new member's DNS name (required for a --hostnames cluster; a --domain cluster derives <cluster-name>-<name>.<domain>)",
  },
  { name: 'name', type: 'string', valueName: 'name', description: "The new member's name (default: the first free etcdN)" },
  {
    name: 'voter',
    type: 'boolean',
    description: 'Join as a voting member at once; by default it joins as a learner (no vote, no effect on quorum) and promotes itself once it has caught up',
  },
  { name: 'dry-run', type: 'boolean', description: 'Check and print every change (etcd, files, DigitalOcean calls), make none; when no member answers, print them and say what could not be checked' },
  ...DROPLET_WAIT_OPTIONS,
  ...FOLDER_OPTIONS,
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const REMOVE_MEMBER_OPTIONS: readonly OptionSpec[] = [
  { name: 'member', aliases: ['name'], type: 'string', valueName: 'name', description: 'The member to remove (required)' },
  { name: 'yes', type: 'boolean', short: 'y', description: 'Do not ask for confirmation (required when stdin is not a terminal)' },
  { name: 'dry-run', type: 'boolean', description: 'Check and print every change (etcd, files, DigitalOcean calls), make none; when no member answers, print them and say what could not be checked' },
  ...FOLDER_OPTIONS,
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const RENEW_CERTS_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'member',
    type: 'string',
    multiple: true,
    valueName: 'name',
    description: 'Renew only this member (repeat or comma-separate; default: every member, the admin and every client certificate)',
  },
  { name: 'client', type: 'string', multiple: true, valueName: 'name', description: 'Renew only this client certificate (repeat or comma-separate; combines with --member)' },
  { name: 'admin', type: 'boolean', description: 'With --member or --client: renew the admin certificate too' },
  { name: 'rotate-keys', type: 'boolean', description: 'Admin and client certificates (and members with --via-ssh-script): generate new keys too (default: keep each key; members renewed in place always make a new one)' },
  { name: 'cert-days', type: 'string', valueName: 'days', description: "Validity of the renewed certificates (default: certDays in cluster.json; a new value is stored there)" },
  { name: 'timeout', type: 'string', valueName: 'seconds', description: 'How long to wait until every member serves its certificate renewed in place (default: 300)' },
  { name: 'via-ssh-script', type: 'boolean', description: 'Fallback for members without the renewal agent: mint member certificates here and write renew/<member>.sh to run on each over SSH' },
  { name: 'dry-run', type: 'boolean', description: 'Mint and check the renewed certificates and print the files it would write, write none' },
  ...FOLDER_OPTIONS,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];


export const CREATE_DROPLETS_OPTIONS: readonly OptionSpec[] = [
  { name: 'domain', type: 'string', valueName: 'zone', description: 'DigitalOcean DNS zone for the members: <cluster-name>-<member>.<zone> (required)' },
  { name: 'region', type: 'string', valueName: 'slug', description: 'Region of the droplets and VPC, e.g. nyc3 (required)' },
  { name: 'ssh-key', type: 'string', valueName: 'fingerprint|id', multiple: true, description: 'SSH key already in the account, for the default user (repeatable)' },
  { name: 'ssh-from', type: 'string', valueName: 'cidr', multiple: true, description: 'Open port 22 to this CIDR (repeatable; none closes it; default: what digitalocean.json records, else no SSH from anywhere)' },
  {
    name: 'trusted-source',
    type: 'string',
    valueName: 'cidr|tag:NAME|droplet:ID',
    multiple: true,
    description: "Let this source reach etcd's client port from outside the VPC, e.g. your laptop's address (repeatable; none removes them; default: what digitalocean.json records, else none)",
  },
  { name: 'allow-internet', type: 'boolean', description: 'Accept --trusted-source 0.0.0.0/0 or ::/0 (every address; TLS client certificates still required)' },
  { name: 'drop-hand-added-rules', type: 'boolean', description: "Remove rules someone added by hand to the cluster's firewall (without it they stop the command, named)" },
  { name: 'size', type: 'string', valueName: 'slug', description: `Droplet size (default ${DEFAULT_SIZE})` },
  { name: 'image', type: 'string', valueName: 'slug|id', description: `Distribution slug or snapshot id (default ${DEFAULT_IMAGE})` },
  { name: 'count', type: 'string', valueName: 'n', description: `Number of members, named etcd1..etcdN (default ${DEFAULT_MEMBER_COUNT}; --names sets names and count)` },
  { name: 'names', type: 'string', valueName: 'n1,n2,n3', description: 'Member names (default etcd1..etcdN); droplet and DNS label <cluster-name>-<name>' },
  clusterOption('cluster-name'),
  { name: 'vpc-uuid', type: 'string', valueName: 'uuid', description: 'Put the droplets in this existing VPC (default: a new VPC etcd-cluster-<cluster-name>)' },
  { name: 'vpc-range', type: 'string', valueName: 'cidr', description: 'IP range of the new VPC, e.g. 10.20.0.0/20 (default: DigitalOcean picks one)' },
  { name: 'ttl', type: 'string', valueName: 'seconds', description: `TTL of the members' A records (default ${DEFAULT_TTL}; minimum 30)` },
  { name: 'wait-timeout', type: 'string', valueName: 'seconds', description: `Give up waiting for droplets to become active after this long (default ${DEFAULT_DROPLET_WAIT_SECONDS})` },
  { name: 'poll-interval', type: 'string', valueName: 'seconds', description: `Seconds between status checks while waiting (default ${DEFAULT_POLL_SECONDS})` },
  { name: 'dry-run', type: 'boolean', description: 'Print every API call that would change something, change nothing (reads still happen)' },
  { name: 'json', type: 'boolean', description: 'Print the result as JSON on stdout (progress stays on stderr)' },
  ...['config', 'out', 'heartbeat-interval', 'election-timeout', 'quota-backend-bytes', 'etcd-option', 'install', 'etcd-version', 'release-url', 'etcd-sha256', 'key-type', 'key-size', 'cert-days', 'allow-even', 'no-snapshots', 'snapshot-schedule', 'snapshot-retain', 'no-defrag', 'defrag-schedule', 'defrag-threshold', 'no-metrics', 'backup-url', 'backup-region', 'backup-endpoint', 'backup-retain', 'client', 'kubernetes', 'k8s-pki-dir', 'force'].map(clusterOption),
  PRINT_MEMBER_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const BACKUPS_OPTIONS: readonly OptionSpec[] = [
  ...BACKUP_TARGET_OPTIONS.map((option) => ({ ...option, description: option.name === 'backup-url' ? "The bucket and prefix to list (default: the cluster's, from cluster.json)" : option.description })),
  { name: 'json', type: 'boolean', description: 'Print the list as JSON' },
  ...FOLDER_OPTIONS,
  S3_TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const CREATE_BACKUP_OPTIONS: readonly OptionSpec[] = [
  { name: 'dry-run', type: 'boolean', description: 'Check the members and say which one the snapshot would come from and where it would go; take and store nothing' },
  ...FOLDER_OPTIONS,
  {
    name: 'timeout',
    type: 'string',
    valueName: 'seconds',
    description: `Give up when the snapshot stream, or one S3 request of its upload, takes longer than this many seconds (default ${DEFAULT_BACKUP_TIMEOUT_SECONDS}; member checks get ${DEFAULT_TIMEOUT_SECONDS})`,
  },
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const DESTROY_DROPLETS_OPTIONS: readonly OptionSpec[] = [
  clusterOption('cluster-name'),
  { name: 'domain', type: 'string', valueName: 'zone', multiple: true, description: `Remove the members' A records from this zone (default: the zone in out/<cluster-name>/${FOLDER_FILES.digitaloceanJson})` },
  clusterOption('out'),
  { name: 'yes', type: 'boolean', short: 'y', description: 'Do not ask for confirmation' },
  { name: 'dry-run', type: 'boolean', description: 'Print every API call that would delete something, delete nothing' },
  { name: 'json', type: 'boolean', description: 'Print what was (or would be) deleted as JSON on stdout' },
  { name: 'wait-timeout', type: 'string', valueName: 'seconds', description: `How long to retry deleting the VPC while DigitalOcean releases the droplets (default ${DEFAULT_VPC_DELETE_WAIT_SECONDS})` },
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

/** firewall: who may reach a create-droplets cluster from outside its VPC (the same flags as create-droplets). */
export const FIREWALL_OPTIONS: readonly OptionSpec[] = [
  ...CREATE_DROPLETS_OPTIONS.filter((o) => ['ssh-from', 'trusted-source', 'allow-internet', 'drop-hand-added-rules'].includes(o.name)),
  clusterOption('cluster-name'),
  clusterOption('out'),
  { name: 'dry-run', type: 'boolean', description: 'Print the API call that would change the firewall, change nothing' },
  { name: 'json', type: 'boolean', description: 'Print the firewall and its recorded access as JSON on stdout' },
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

/** What roll and repair share: the bounds of a replacement, printing its user-data, and the folder. */
const REPLACE_COMMON_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'catch-up-timeout',
    type: 'string',
    valueName: 'seconds',
    description: `Give a replacement this long to boot, join and catch up before it is rolled back (default ${DEFAULT_CATCH_UP_SECONDS}); also bounds the final cluster-version check`,
  },
  { name: 'poll-interval', type: 'string', valueName: 'seconds', description: `Seconds between checks while waiting (default ${DEFAULT_POLL_SECONDS})` },
  DROPLET_WAIT_OPTIONS.find((option) => option.name === 'wait-timeout')!,
  { name: 'print', type: 'boolean', description: "Also write each replacement's user-data to stdout as it is made (the summary then goes to stderr)" },
  { name: 'dry-run', type: 'boolean', description: 'Check and print the plan (which member is replaced by which, with what), change nothing; when no member answers, print it and say what could not be checked' },
  { name: 'no-backup', type: 'boolean', description: "Do not take a snapshot before the first replacement (by default one goes to the cluster's bucket, or to backups/ in the folder; see create-backup)" },
  {
    name: 'abort',
    type: 'boolean',
    description: 'Undo the roll or repair in progress: remove a replacement that is still a learner, delete its files (and droplet), clear roll.json; never removes a voting member, and says what it left',
  },
  ...FOLDER_OPTIONS,
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export const ROLL_OPTIONS: readonly OptionSpec[] = [
  { name: 'etcd-version', type: 'string', valueName: 'vX.Y.Z', description: "Upgrade to this release: the cluster's minor or the next one (3.4 -> 3.5 -> 3.6), no downgrades (default: the cluster's)" },
  // A roll keeps the cluster's settings: these defaults are the cluster's, not gen-userdata's.
  { name: 'release-url', type: 'string', valueName: 'url', description: "Base URL of etcd releases for the replacements, e.g. a mirror (default: the cluster's)" },
  { name: 'install', type: 'string', valueName: 'mode', description: "How the replacements get etcd: download or baked (see docs/packer.md) (default: the cluster's)" },
  {
    name: 'etcd-sha256',
    type: 'string',
    valueName: 'hex',
    description: "Pin the tarball's SHA-256 (default: the cluster's pin, if any; a cluster that pins one needs it with a new --etcd-version)",
  },
  { name: 'key-type', type: 'string', valueName: 'type', description: "Type of the replacements' keys: rsa, ecdsa-p256 or ecdsa-p384 (default: the cluster's)" },
  {
    name: 'key-size',
    type: 'string',
    valueName: 'bits',
    description: `RSA key size: 2048, 3072 or 4096 (default: the cluster's; ${DEFAULT_RSA_KEY_SIZE} when --key-type changes the cluster to rsa)`,
  },
  { name: 'member', type: 'string', multiple: true, valueName: 'name', description: 'Replace only these members (repeat or comma-separate; default: every member, the leader last)' },
  { name: 'ips', type: 'string', valueName: 'a,b,c', description: "IP mode: the new machines' IPv4 addresses, one per replaced member in order (required)" },
  { name: 'hostnames', type: 'string', valueName: 'h1,h2', description: "A --hostnames cluster: the new machines' DNS names, one per replaced member (a --domain cluster derives them)" },
  { name: 'size', type: 'string', valueName: 'slug', description: 'On a create-droplets cluster: droplet size of the replacements (default: the cluster\'s)' },
  { name: 'image', type: 'string', valueName: 'slug|id', description: 'On a create-droplets cluster: image of the replacements (default: the cluster\'s)' },
  ...REPLACE_COMMON_OPTIONS,
];

export const REPAIR_OPTIONS: readonly OptionSpec[] = [
  { name: 'member', aliases: ['name'], type: 'string', valueName: 'name', description: 'The dead member to replace (required); refused if it is healthy, or if removing it would lose quorum' },
  { name: 'ip', type: 'string', valueName: 'address', description: "IP mode: the new machine's IPv4 address (required)" },
  { name: 'hostname', type: 'string', valueName: 'name', description: "A --hostnames cluster: the new machine's DNS name (a --domain cluster derives it)" },
  ...REPLACE_COMMON_OPTIONS,
];

export const VERSION_OPTIONS: readonly OptionSpec[] = [];

export const COMPLETION_OPTIONS: readonly OptionSpec[] = [];

/** restore takes what gen-userdata takes, and with --region what create-droplets takes, plus the snapshot to start from. */
export const RESTORE_OPTIONS: readonly OptionSpec[] = [
  { name: 'snapshot', type: 'string', valueName: 'object', description: "The snapshot to restore: its object key or file name, as backups lists it, or a local file create-backup kept (backups/<name>.db: checked, then uploaded to the bucket first) (default: the newest restorable one, with a recorded SHA-256)" },
  { name: 'url-expiry', type: 'string', valueName: 'hours', description: `Life of the snapshot's download URL in the user-data, 1 to 168 (default ${DEFAULT_URL_HOURS}): boot the members before it expires` },
  // A restored cluster uploads its own snapshots: --no-snapshots would contradict --backup-url.
  ...CLUSTER_OPTIONS.filter((option) => option.name !== 'no-snapshots'),
  ...CREATE_DROPLETS_OPTIONS.filter((option) => !CLUSTER_OPTIONS.some((other) => other.name === option.name) && !['json', 'print', 'help'].includes(option.name)).map((option) =>
    option.name === 'region'
      ? { ...option, description: 'With --domain: create the droplets in this region, as create-droplets does (DIGITALOCEAN_TOKEN)' }
      : option.name === 'dry-run'
        ? { ...option, description: 'With --region: list the snapshot, then print every API call that would change something; create and write nothing' }
        : option,
  ),
  S3_TIMEOUT_OPTION,
  PRINT_MEMBER_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];
