/**
 * The etcd settings `--etcd-option key=value` may set (and `etcd-options` in --config), as one
 * table: each row names the setting as etcd's config file spells it (the flag name), the value it
 * takes, and the etcd minors that accept it. A row's minors come from etcd's own config struct,
 * the `json:"..."` tags of embed.Config, read at each release (cited per group below); a setting is
 * listed for a minor only when the minor's first release (x.y.0) and its latest patch both have it.
 *
 * What etcd-cloudinit writes itself is not here and is refused with the flag that sets it: member
 * names and URLs, TLS files, the data dir, initial-cluster*, the quota, the raft timings, logger,
 * pre-vote, the gateway, enable-v2 (off on 3.4/3.5, gone in 3.6).
 */

export const ETCD_MINORS = ['3.4', '3.5', '3.6', '3.7'] as const;
export type EtcdMinor = (typeof ETCD_MINORS)[number];

export type OptionValue =
  | { readonly type: 'integer'; readonly min: number; readonly max: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  /** A Go time.Duration: written as `<n>ms|s|m|h`; etcd's config file reads it as nanoseconds (JSON number). */
  | { readonly type: 'duration'; readonly minMs: number; readonly maxMs: number }
  /** auto-compaction-retention: hours or a duration (periodic), a revision count (revision). */
  | { readonly type: 'retention' };

export interface EtcdOptionRow {
  readonly name: string;
  readonly value: OptionValue;
  /** The minors that accept the name, in order (a contiguous run of ETCD_MINORS). */
  readonly minors: readonly EtcdMinor[];
  /** After the last minor: what took its place, for the refusal (`renamed compaction-batch-limit`). */
  readonly after?: string;
}

const ALL: readonly EtcdMinor[] = ETCD_MINORS;
const count = (min: number, max: number): OptionValue => ({ type: 'integer', min, max });
const duration = (minMs: number, maxMs: number): OptionValue => ({ type: 'duration', minMs, maxMs });
const HOUR_MS = 3_600_000;

export const ETCD_OPTIONS: readonly EtcdOptionRow[] = [
  // In every minor: embed/config.go at v3.4.0 and v3.4.45, server/embed/config.go at v3.5.0, v3.5.33,
  // v3.6.0, v3.6.14 and main (3.7): SnapshotCount uint64 `json:"snapshot-count"`, MaxTxnOps uint
  // `json:"max-txn-ops"`, MaxRequestBytes uint `json:"max-request-bytes"`, MaxWalFiles uint
  // `json:"max-wals"`, AutoCompactionMode/AutoCompactionRetention string, GRPCKeepAliveMinTime/
  // Interval/Timeout time.Duration, LogLevel string. The ranges are ours: what a cluster can live with.
  { name: 'snapshot-count', value: count(1000, 10_000_000), minors: ALL },
  { name: 'max-txn-ops', value: count(1, 100_000), minors: ALL },
  // etcd's docs: requests over 10 MiB are not recommended (https://etcd.io/docs/v3.5/dev-guide/limit/).
  { name: 'max-request-bytes', value: count(1024, 10 * 1024 * 1024), minors: ALL },
  { name: 'max-wals', value: count(0, 1000), minors: ALL },
  { name: 'auto-compaction-mode', value: { type: 'enum', values: ['periodic', 'revision'] }, minors: ALL },
  { name: 'auto-compaction-retention', value: { type: 'retention' }, minors: ALL },
  { name: 'grpc-keepalive-min-time', value: duration(1000, HOUR_MS), minors: ALL },
  { name: 'grpc-keepalive-interval', value: duration(1000, 24 * HOUR_MS), minors: ALL },
  { name: 'grpc-keepalive-timeout', value: duration(1000, HOUR_MS), minors: ALL },
  { name: 'log-level', value: { type: 'enum', values: ['debug', 'info', 'warn', 'error'] }, minors: ALL },
  // MaxSnapFiles uint `json:"max-snapshots"`: in v3.4.0 to v3.6.14, gone from main (3.7).
  { name: 'max-snapshots', value: count(0, 1000), minors: ['3.4', '3.5', '3.6'], after: 'removed' },
  // ExperimentalCompactionBatchLimit int `json:"experimental-compaction-batch-limit"` (v3.4.0 .. v3.5.33);
  // v3.6.0 adds CompactionBatchLimit `json:"compaction-batch-limit"` and deprecates the old name; main drops it.
  { name: 'experimental-compaction-batch-limit', value: count(1, 100_000), minors: ['3.4', '3.5'], after: 'renamed compaction-batch-limit' },
  { name: 'compaction-batch-limit', value: count(1, 100_000), minors: ['3.6', '3.7'] },
  // ExperimentalCorruptCheckTime time.Duration `json:"experimental-corrupt-check-time"` (v3.4.0 .. v3.5.33);
  // v3.6.0 CorruptCheckTime `json:"corrupt-check-time"`.
  { name: 'experimental-corrupt-check-time', value: duration(60_000, 7 * 24 * HOUR_MS), minors: ['3.4', '3.5'], after: 'renamed corrupt-check-time' },
  { name: 'corrupt-check-time', value: duration(60_000, 7 * 24 * HOUR_MS), minors: ['3.6', '3.7'] },
  // ExperimentalInitialCorruptCheck bool `json:"experimental-initial-corrupt-check"` (v3.4.0 .. v3.6.14,
  // deprecated in 3.6 for the InitialCorruptCheck feature gate; gone from main).
  { name: 'experimental-initial-corrupt-check', value: { type: 'boolean' }, minors: ['3.4', '3.5'], after: 'replaced by the InitialCorruptCheck feature gate (deprecated, removed in 3.7)' },
  // embed/config.go v3.4.0: ExperimentalBackendFreelistType `json:"experimental-backend-bbolt-freelist-type"`;
  // server/embed/config.go v3.5.0 and later: BackendFreelistType `json:"backend-bbolt-freelist-type"`.
  { name: 'experimental-backend-bbolt-freelist-type', value: { type: 'enum', values: ['map', 'array'] }, minors: ['3.4'], after: 'renamed backend-bbolt-freelist-type' },
  { name: 'backend-bbolt-freelist-type', value: { type: 'enum', values: ['map', 'array'] }, minors: ['3.5', '3.6', '3.7'] },
  // Not in v3.4.0 (came in a 3.4 patch), so from 3.5: ExperimentalWatchProgressNotifyInterval and
  // ExperimentalWarningApplyDuration (v3.5.0 .. v3.5.33), renamed watch-progress-notify-interval and
  // warning-apply-duration in v3.6.0 (the experimental names gone from main).
  { name: 'experimental-watch-progress-notify-interval', value: duration(100, HOUR_MS), minors: ['3.5'], after: 'renamed watch-progress-notify-interval' },
  { name: 'watch-progress-notify-interval', value: duration(100, HOUR_MS), minors: ['3.6', '3.7'] },
  { name: 'experimental-warning-apply-duration', value: duration(10, 60_000), minors: ['3.5'], after: 'renamed warning-apply-duration' },
  { name: 'warning-apply-duration', value: duration(10, 60_000), minors: ['3.6', '3.7'] },
  // ExperimentalBootstrapDefragThresholdMegabytes uint (v3.5.0 .. v3.5.33), renamed in v3.6.0.
  { name: 'experimental-bootstrap-defrag-threshold-megabytes', value: count(0, 65_536), minors: ['3.5'], after: 'renamed bootstrap-defrag-threshold-megabytes' },
  { name: 'bootstrap-defrag-threshold-megabytes', value: count(0, 65_536), minors: ['3.6', '3.7'] },
  // v3.6.0 and main only: CompactionSleepInterval time.Duration (3.5 got its experimental name in a patch, not v3.5.0),
  // MaxLearners int `json:"max-learners"`.
  { name: 'compaction-sleep-interval', value: duration(1, 60_000), minors: ['3.6', '3.7'] },
  { name: 'max-learners', value: count(1, 9), minors: ['3.6', '3.7'] },
];

/** Settings etcd-cloudinit writes itself: refused, with what sets them instead. */
export const OWNED_SETTINGS: Readonly<Record<string, string>> = {
  name: 'the member name (--names)',
  'data-dir': 'the node layout',
  'wal-dir': 'the node layout',
  'listen-peer-urls': "the member's address",
  'listen-client-urls': "the member's address",
  'listen-metrics-urls': '--no-metrics',
  'initial-advertise-peer-urls': "the member's address",
  'advertise-client-urls': "the member's address",
  'initial-cluster': 'the member list',
  'initial-cluster-state': 'gen-userdata, add-member and roll',
  'initial-cluster-token': 'the cluster name',
  'client-transport-security': "the cluster's PKI",
  'peer-transport-security': "the cluster's PKI",
  'cert-file': "the cluster's PKI",
  'key-file': "the cluster's PKI",
  'trusted-ca-file': "the cluster's PKI",
  'client-cert-auth': "the cluster's PKI",
  'auto-tls': "the cluster's PKI",
  'peer-auto-tls': "the cluster's PKI",
  'tls-min-version': 'etcd-cloudinit (TLS 1.2 where etcd supports the setting)',
  'quota-backend-bytes': '--quota-backend-bytes',
  'heartbeat-interval': '--heartbeat-interval',
  'election-timeout': '--election-timeout',
  'enable-v2': 'etcd-cloudinit (the v2 API stays off on 3.4 and 3.5; etcd 3.6 removed it)',
  'enable-grpc-gateway': "etcd-cloudinit (the day-2 commands use the gateway)",
  'pre-vote': 'etcd-cloudinit (always on)',
  logger: 'etcd-cloudinit (zap)',
  'force-new-cluster': 'restore (never in a running cluster\'s config)',
};

/** The minor of a version tag (v3.5.21 -> 3.5); undefined for a minor the table does not cover. */
export function etcdMinorOf(etcdVersion: string): EtcdMinor | undefined {
  const match = /^v?(\d+)\.(\d+)\./.exec(etcdVersion);
  const minor = match ? `${match[1]}.${match[2]}` : '';
  return (ETCD_MINORS as readonly string[]).includes(minor) ? (minor as EtcdMinor) : undefined;
}

/** A raw value (a flag's text, or a YAML scalar from --config) as the canonical text cluster.json keeps. */
function valueText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return undefined;
}

const DURATION = /^(\d+)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: HOUR_MS };

/** Why `text` is no value of this kind, or undefined. */
function valueProblem(value: OptionValue, text: string): string | undefined {
  switch (value.type) {
    case 'integer': {
      if (!/^\d+$/.test(text) || Number(text) < value.min || Number(text) > value.max) return `is not a whole number from ${value.min} to ${value.max}`;
      return undefined;
    }
    case 'boolean':
      return text === 'true' || text === 'false' ? undefined : 'is not true or false';
    case 'enum':
      return value.values.includes(text) ? undefined : `is not one of ${value.values.join(', ')}`;
    case 'duration': {
      const match = DURATION.exec(text);
      const ms = match ? Number(match[1]) * UNIT_MS[match[2]!]! : NaN;
      if (!(ms >= value.minMs && ms <= value.maxMs)) return `is not a duration from ${formatMs(value.minMs)} to ${formatMs(value.maxMs)} (a whole number with ms, s, m or h: 30s, 5m, 2h)`;
      return undefined;
    }
    case 'retention':
      return /^\d+$/.test(text) || /^\d+(s|m|h)$/.test(text) ? undefined : 'is not a retention: hours (1), a duration (30m, 12h) or, with auto-compaction-mode revision, a revision count (1000)';
  }
}

function formatMs(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) if (ms % UNIT_MS[unit]! === 0) return `${ms / UNIT_MS[unit]!}${unit}`;
  return `${ms}ms`;
}

/** Why etcd `minor` refuses the setting `name`, or undefined when it accepts it (the row is known). */
function minorProblem(row: EtcdOptionRow, minor: EtcdMinor): string | undefined {
  if (row.minors.includes(minor)) return undefined;
  const index = ETCD_MINORS.indexOf(minor);
  const first = ETCD_MINORS.indexOf(row.minors[0]!);
  if (index < first) return `etcd ${minor} does not accept ${row.name} (it is there from etcd ${row.minors[0]})`;
  const last = row.minors.at(-1)!;
  const next = ETCD_MINORS[ETCD_MINORS.indexOf(last) + 1]!;
  return `etcd ${minor} no longer accepts ${row.name}: ${row.after ?? 'removed'} in etcd ${next}`;
}

/**
 * The options checked for one etcd version: name -> canonical value text, in the table's order.
 * `where` names the field in messages (etcd-option, or etcd-options in --config); throws a message
 * (no phase) naming the setting, its value and, for a version refusal, the version.
 */
export function checkEtcdOptions(options: Readonly<Record<string, unknown>>, etcdVersion: string): Record<string, string> {
  const minor = etcdMinorOf(etcdVersion);
  const checked: Record<string, string> = {};
  for (const [name, raw] of Object.entries(options)) {
    const text = valueText(raw);
    const shown = `${JSON.stringify(`${name}=${text ?? String(raw)}`)}`;
    const owned = OWNED_SETTINGS[name];
    if (owned !== undefined) throw new EtcdOptionError(`${shown}: ${name} is set by ${owned}, not by --etcd-option`);
    const row = ETCD_OPTIONS.find((candidate) => candidate.name === name);
    if (row === undefined) {
      throw new EtcdOptionError(`${shown}: ${JSON.stringify(name)} is not an etcd setting etcd-cloudinit allows; allowed: ${ETCD_OPTIONS.map((candidate) => candidate.name).join(', ')} (docs/reference.md)`);
    }
    if (minor === undefined) throw new EtcdOptionError(`${shown}: etcd ${etcdVersion} is not a minor the options table covers (${ETCD_MINORS.join(', ')})`);
    const refused = minorProblem(row, minor);
    if (refused !== undefined) throw new EtcdOptionError(`${shown}: ${refused}`);
    const problem = text === undefined ? 'is not a single value' : valueProblem(row.value, text);
    if (problem !== undefined) throw new EtcdOptionError(`${shown}: the value ${problem}`);
    checked[name] = text!;
  }
  // A revision count is the only retention revision mode reads; a mode alone keeps the default "1h", which it would not.
  if (checked['auto-compaction-mode'] === 'revision') {
    const retention = checked['auto-compaction-retention'];
    if (retention === undefined || !/^\d+$/.test(retention)) {
      throw new EtcdOptionError(`"auto-compaction-mode=revision": needs auto-compaction-retention=<revisions> (a whole number) too${retention === undefined ? '' : `, not ${JSON.stringify(retention)}`}`);
    }
  }
  return Object.fromEntries(ETCD_OPTIONS.filter((row) => checked[row.name] !== undefined).map((row) => [row.name, checked[row.name]!]));
}

/** A refusal of checkEtcdOptions; the caller adds the phase and the field. */
export class EtcdOptionError extends Error {}

/** The options as etcd's config file takes them (YAML key -> value): durations in nanoseconds, numbers and booleans as such. */
export function etcdConfigEntries(options: Readonly<Record<string, string>>): Record<string, string | number | boolean> {
  const entries: Record<string, string | number | boolean> = {};
  for (const [name, text] of Object.entries(options)) {
    const row = ETCD_OPTIONS.find((candidate) => candidate.name === name);
    if (row === undefined) throw new Error(`unchecked etcd option ${name}`);
    const value = row.value;
    if (value.type === 'integer') entries[name] = Number(text);
    else if (value.type === 'boolean') entries[name] = text === 'true';
    else if (value.type === 'duration') {
      const [, amount, unit] = DURATION.exec(text)!;
      // time.Duration in JSON (etcd reads its YAML config through JSON): nanoseconds.
      entries[name] = Number(amount) * UNIT_MS[unit!]! * 1_000_000;
    } else entries[name] = text;
  }
  return entries;
}

/** `key=value` items of --etcd-option as a mapping; a repeated key or an item without = is refused. */
export function parseEtcdOptionFlags(items: readonly string[]): Record<string, string> {
  const options: Record<string, string> = {};
  for (const item of items) {
    const equals = item.indexOf('=');
    if (equals <= 0) throw new EtcdOptionError(`${JSON.stringify(item)} is not key=value (for example --etcd-option snapshot-count=50000)`);
    const name = item.slice(0, equals).trim();
    if (name in options) throw new EtcdOptionError(`${JSON.stringify(item)}: ${name} is given twice`);
    options[name] = item.slice(equals + 1);
  }
  return options;
}
