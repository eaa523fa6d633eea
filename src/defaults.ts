/**
 * The defaults of the command-line flags. The code that applies a default and the `--help` text
 * that states it both read it here, so the two cannot drift (test/help-defaults.test.ts checks
 * each --help against what the code does). This module imports nothing.
 */
export const DEFAULT_CLUSTER_NAME = 'etcd';
export const DEFAULT_OUT = 'out';
export const DEFAULT_KEY_TYPE = 'rsa' as const;
export const DEFAULT_RSA_KEY_SIZE = 4096 as const;
export const DEFAULT_INSTALL_MODE = 'download' as const;
/** Member, admin and client certificates; the CA gets 10 years. */
export const DEFAULT_CERT_DAYS = 825;
export const DEFAULT_SNAPSHOT_SCHEDULE = 'hourly';
export const DEFAULT_SNAPSHOT_RETAIN = 24;
export const DEFAULT_BACKUP_RETAIN = 168;
/**
 * The node's defragmentation timer: once a day (the timer adds up to an hour of random delay, and
 * etcd's lock keeps members one at a time), and only when at least half of the database file is
 * free space. Compaction frees pages hourly; below half, a defragmentation (which blocks the member
 * while it rewrites the file) gives back too little to be worth it. etcd-druid and Talos also
 * defragment on a daily-ish schedule with a fragmentation threshold.
 */
export const DEFAULT_DEFRAG_SCHEDULE = 'daily';
/** Whole percent of the database file that is free (dbSize - dbSizeInUse) / dbSize. */
export const DEFAULT_DEFRAG_THRESHOLD_PERCENT = 50;
/** etcd's own raft timings, used when the flags are not given (etcd's defaults, not ours to set). */
export const ETCD_HEARTBEAT_INTERVAL_MS = 100;
export const ETCD_ELECTION_TIMEOUT_MS = 1000;
/**
 * etcd's own backend quota when --quota-backend-bytes is not given (etcdserver DefaultQuotaBytes,
 * 2 GiB): the cluster's members run with it, and health measures the database against it.
 */
export const ETCD_QUOTA_BACKEND_BYTES = 2 * 1024 ** 3;
export const DEFAULT_K8S_PKI_DIR = '/etc/kubernetes/pki/etcd';
export const DEFAULT_LISTEN_FROM = 'do-metadata' as const;

/** Day 2: per etcd call. */
export const DEFAULT_TIMEOUT_SECONDS = 5;
export const DEFAULT_WARN_DAYS = 30;
/** defrag: the least time one member's defragmentation gets (it rewrites the whole file; --timeout bounds the other calls). */
export const DEFRAG_CALL_SECONDS = 300;
/** create-backup (and roll's pre-roll backup): the snapshot stream and each S3 request of its upload. */
export const DEFAULT_BACKUP_TIMEOUT_SECONDS = 300;
export const DEFAULT_POLL_SECONDS = 5;
export const DEFAULT_CATCH_UP_SECONDS = 900;
/** A new droplet to become active. */
export const DEFAULT_DROPLET_WAIT_SECONDS = 600;
/** destroy-droplets: DigitalOcean to release a VPC's droplets. */
export const DEFAULT_VPC_DELETE_WAIT_SECONDS = 120;
export const DEFAULT_MEMBER_COUNT = 3;
/** restore: life of the snapshot's download URL. */
export const DEFAULT_URL_HOURS = 24;
