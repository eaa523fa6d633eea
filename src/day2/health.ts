import { X509Certificate } from 'node:crypto';
import { DEFAULT_CLUSTER_NAME, ETCD_QUOTA_BACKEND_BYTES } from '../defaults.js';
import { memberHealth, memberStatus, type ClientOptions, type EtcdAlarm } from '../etcd/client.js';
import type { ClusterPlan } from '../plan.js';
import { operatorMachines } from './machines.js';

const DAY_MS = 86_400_000;

/** What one member said (or that it said nothing). */
export interface MemberHealth {
  readonly name: string;
  readonly endpoint: string;
  readonly healthy: boolean;
  readonly leader: boolean;
  /** A member add-member joined as a learner that has not been promoted yet: it has no vote. */
  readonly learner: boolean;
  readonly version: string | undefined;
  readonly dbSizeBytes: number | undefined;
  /** The part of the file that holds data; dbSizeBytes minus this is what a defragmentation gives back. */
  readonly dbSizeInUseBytes?: number | undefined;
  readonly raftIndex: number | undefined;
  readonly memberId: string | undefined;
  /** Days left on the certificate the member serves (from the TLS handshake, not from pki/). */
  readonly certExpiresInDays: number | undefined;
  readonly certNotAfter: string | undefined;
  /** The serial of that certificate (hex, as Node prints it): a renewal shows here. */
  readonly certSerial?: string | undefined;
  readonly error: string | undefined;
}

/** A certificate on this workstation the operator depends on. */
export interface LocalCertificate {
  readonly file: string;
  readonly notAfter: string;
  readonly expiresInDays: number;
}

/** A member's database: its file against the quota, and the alarms it raised. */
export interface MemberDatabase {
  /** dbSizeBytes as a share of the quota: etcd raises NOSPACE when the file reaches it. */
  readonly quotaPercent: number | undefined;
  readonly alarms: readonly string[];
}

/** An active alarm, with the member that raised it. */
export interface ActiveAlarm {
  readonly alarm: string;
  readonly memberId: string;
  /** The member's name in cluster.json; undefined for a member it does not know. */
  readonly member: string | undefined;
}

/** What health knows about the cluster's database besides each member's status: the quota, and the alarms (undefined when none could be listed). */
export interface DatabaseState {
  readonly quotaBackendBytes: number;
  readonly alarms: readonly EtcdAlarm[] | undefined;
}

/** health fails above this share of the quota: time to act before etcd refuses writes at 100%. */
export const QUOTA_WARN_PERCENT = 80;

/** The quota a cluster's members run with: --quota-backend-bytes as recorded, else etcd's default. */
export function quotaBackendBytesOf(plan: Pick<ClusterPlan, 'quotaBackendBytes'>): number {
  return plan.quotaBackendBytes ?? ETCD_QUOTA_BACKEND_BYTES;
}

export interface HealthReport {
  readonly clusterName: string;
  readonly checkedAt: string;
  readonly warnDays: number;
  readonly members: readonly (MemberHealth & MemberDatabase)[];
  /** The quota every member's database is measured against (bytes). */
  readonly quotaBackendBytes: number;
  /** The cluster's active alarms (NOSPACE: writes refused; CORRUPT); empty when there are none or none could be listed. */
  readonly alarms: readonly ActiveAlarm[];
  readonly certificates: readonly LocalCertificate[];
  /** How the running cluster's member list differs from cluster.json; empty when they agree (or no member answered). */
  readonly membershipDrift: readonly string[];
  /** One line per reason for a non-zero exit; empty when all is well. */
  readonly problems: readonly string[];
  readonly healthy: boolean;
}

export function daysUntil(notAfter: Date, now: Date): number {
  return Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
}

/** Asks one member for /health and its status; never throws. */
export async function checkMember(name: string, endpoint: string, client: ClientOptions, now: Date): Promise<MemberHealth> {
  const [health, status] = await Promise.allSettled([memberHealth(endpoint, client), memberStatus(endpoint, client)]);
  const served = health.status === 'fulfilled' ? health.value.servedCertificate : undefined;
  const errors: string[] = [];
  if (health.status === 'rejected') errors.push((health.reason as Error).message);
  else if (!health.value.healthy) errors.push(`unhealthy: ${health.value.reason}`);
  if (status.status === 'rejected') {
    if (health.status !== 'rejected') errors.push(`status: ${(status.reason as Error).message}`);
  } else if (status.value.errors?.length) {
    errors.push(...status.value.errors);
  }
  const value = status.status === 'fulfilled' ? status.value : undefined;
  const memberId = value?.header?.member_id;
  const toNumber = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  return {
    name,
    endpoint,
    healthy: errors.length === 0,
    leader: memberId !== undefined && value?.leader === memberId,
    learner: value?.isLearner === true,
    version: value?.version,
    dbSizeBytes: toNumber(value?.dbSize),
    dbSizeInUseBytes: toNumber(value?.dbSizeInUse),
    raftIndex: toNumber(value?.raftIndex),
    memberId,
    certExpiresInDays: served ? daysUntil(served.validTo, now) : undefined,
    certNotAfter: served?.validTo.toISOString(),
    certSerial: served?.serialNumber,
    error: errors.length > 0 ? errors.join('; ') : undefined,
  };
}

/** Every member of the plan, in parallel. */
export function checkMembers(plan: ClusterPlan, client: ClientOptions, now: Date): Promise<MemberHealth[]> {
  return Promise.all(plan.members.map((member) => checkMember(member.name, member.clientUrl, client, now)));
}

/** The member answered (its status, or an unhealthy /health) rather than not at all: it is up, perhaps busy. */
export function answered(member: MemberHealth): boolean {
  return member.healthy || member.version !== undefined || member.error?.startsWith('unhealthy:') === true;
}

/** How a connection fails when nothing listens or the machine is not there: refused, timed out, unroutable, name not found. */
const NO_CONNECTION = /^(ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENOTFOUND|EAI_AGAIN|EAI_NONAME): |^no answer within \d+ ms$/;

/**
 * The member did not answer at all: no connection (refused, timed out, name not resolved), as when
 * etcd never started on it. Not a member that answered unhealthy, nor one whose TLS handshake failed.
 */
export function neverAnswered(member: MemberHealth): boolean {
  return !answered(member) && member.error !== undefined && NO_CONNECTION.test(member.error);
}

/** No member answered at all: the cluster cannot be reached from here (not booted yet, or another network). */
export function unreachable(health: readonly MemberHealth[]): boolean {
  return health.every((member) => !answered(member));
}

/** How a preflight waits for a busy cluster to settle. */
export interface SettleWait {
  /** The bound: SETTLE_MS, the steps' own wait. */
  readonly settleMs: number;
  readonly pollMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly progress: (line: string) => void;
  /** A member whose health is the question, not a hiccup to wait out (repair's dead member). */
  readonly ignore?: string;
}

/** How long a roll's step waits for the cluster to settle before refusing (day2/replace.ts), and a preflight as long. */
export const SETTLE_MS = 120_000;

/**
 * Every member's health, asked again for up to `settleMs` while a member answers unhealthy (etcd's
 * {"health":"false"} on one timed-out QGET of a busy cluster): one transient answer is no reason to
 * refuse. Only while every member answers: one that does not answer at all is a dead machine (or a
 * cluster this workstation cannot reach), waiting cannot change the verdict, and the caller decides at once.
 */
export async function settledHealth(check: () => Promise<MemberHealth[]>, what: string, wait: SettleWait): Promise<MemberHealth[]> {
  const deadline = Date.now() + wait.settleMs;
  let waiting = false;
  for (;;) {
    const health = await check();
    const considered = health.filter((member) => member.name !== wait.ignore);
    const busy = considered.filter((member) => !member.healthy && answered(member));
    if (busy.length === 0 || considered.some((member) => !answered(member)) || Date.now() >= deadline) return health;
    if (!waiting) {
      wait.progress(`waiting up to ${Math.round(wait.settleMs / 1000)} s for the cluster to settle before ${what}: ${busy.map((member) => `${member.name} (${member.error})`).join('; ')}`);
    }
    waiting = true;
    await wait.sleep(Math.min(wait.pollMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * A day-2 preflight's view of the members: settled as above; in a dry run on a cluster no member of
 * which answers, undefined, after saying which `checks` were not made (the plan is still printed).
 */
export async function preflightHealth(check: () => Promise<MemberHealth[]>, what: string, wait: SettleWait, dryRun: boolean, checks: string): Promise<MemberHealth[] | undefined> {
  const health = await settledHealth(check, what, wait);
  if (!dryRun || !unreachable(health)) return health;
  wait.progress(couldNotCheck(health, checks));
  return undefined;
}

/** What a dry run says when the cluster did not answer: the plan stands, these checks were not made. */
export function couldNotCheck(health: readonly MemberHealth[], checks: string): string {
  return `dry run: could not check ${checks}: no member answered (${health.map((member) => `${member.name} ${member.endpoint}: ${member.error ?? 'no answer'}`).join('; ')}); the plan assumes the cluster is as cluster.json says`;
}

export function describeLocalCertificate(file: string, certPem: string, now: Date): LocalCertificate {
  const notAfter = new Date(new X509Certificate(certPem).validTo);
  return { file, notAfter: notAfter.toISOString(), expiresInDays: daysUntil(notAfter, now) };
}

/** Pure: the verdict from what the members said and the local certificates. */
export function assessHealth(
  clusterName: string,
  members: readonly MemberHealth[],
  certificates: readonly LocalCertificate[],
  membershipDrift: readonly string[],
  warnDays: number,
  now: Date,
  database: DatabaseState = { quotaBackendBytes: ETCD_QUOTA_BACKEND_BYTES, alarms: [] },
): HealthReport {
  const problems: string[] = membershipDrift.map((drift) => `membership: ${drift}`);
  const quota = database.quotaBackendBytes;
  const alarms: ActiveAlarm[] = (database.alarms ?? []).map(({ alarm, memberID }) => ({ alarm, memberId: memberID, member: members.find((member) => member.memberId === memberID)?.name }));
  const defrag = `etcd-cloudinit defrag${clusterName === DEFAULT_CLUSTER_NAME ? '' : ` --cluster-name ${clusterName}`}`;
  for (const alarm of alarms) problems.push(alarmProblem(alarm, defrag));
  if (database.alarms === undefined && members.some(answered)) problems.push('could not list the alarms (NOSPACE, CORRUPT): see the members\' errors');
  const measured = members.map((member) => ({
    ...member,
    quotaPercent: member.dbSizeBytes === undefined ? undefined : Math.round((member.dbSizeBytes / quota) * 1000) / 10,
    alarms: alarms.filter((alarm) => alarm.memberId === member.memberId).map((alarm) => alarm.alarm),
  }));
  for (const member of measured) {
    // Under NOSPACE the alarm's line says it all.
    if (member.quotaPercent === undefined || member.quotaPercent <= QUOTA_WARN_PERCENT || alarms.some((alarm) => alarm.alarm === 'NOSPACE')) continue;
    const reclaimable = member.dbSizeInUseBytes === undefined ? undefined : member.dbSizeBytes! - member.dbSizeInUseBytes;
    problems.push(
      `member ${member.name}'s database is at ${member.quotaPercent}% of the quota (${formatBytes(member.dbSizeBytes)} of ${formatBytes(quota)}; above ${QUOTA_WARN_PERCENT}%): at 100% etcd raises NOSPACE and refuses writes; run '${defrag}' to give back ${reclaimable === undefined ? 'what compaction freed' : `the ${formatBytes(reclaimable)} not in use`}, delete keys you no longer need, or raise --quota-backend-bytes (docs/day2.md)`,
    );
  }
  for (const member of members) {
    if (neverAnswered(member)) problems.push(`member ${member.name} (${member.endpoint}) did not answer: ${member.error}`);
    else if (!member.healthy) problems.push(`member ${member.name} (${member.endpoint}) is unhealthy: ${member.error ?? 'no answer'}`);
    if (member.certExpiresInDays !== undefined && member.certExpiresInDays < warnDays) {
      problems.push(`member ${member.name} serves a certificate that expires in ${member.certExpiresInDays} day(s) (< --warn-days ${warnDays}); run renew-certs`);
    }
  }
  const leaders = new Set(members.filter((member) => member.leader).map((member) => member.memberId));
  if (members.some((member) => member.healthy) && leaders.size === 0) problems.push('no member reports itself as leader');
  for (const certificate of certificates) {
    if (certificate.expiresInDays < warnDays) {
      problems.push(`${certificate.file} expires in ${certificate.expiresInDays} day(s) (< --warn-days ${warnDays})`);
    }
  }
  return { clusterName, checkedAt: now.toISOString(), warnDays, members: measured, quotaBackendBytes: quota, alarms, certificates, membershipDrift, problems, healthy: problems.length === 0 };
}

/** What an active alarm means, and what to do about it. */
function alarmProblem(alarm: ActiveAlarm, defrag: string): string {
  const raisedBy = `raised by ${alarm.member ?? `member ${alarm.memberId}`}`;
  switch (alarm.alarm) {
    case 'NOSPACE':
      return `alarm NOSPACE (${raisedBy}): the database reached its quota and the cluster refuses every write; delete keys you no longer need, then run '${defrag}' (it compacts, defragments every member and disarms the alarm)`;
    case 'CORRUPT':
      return `alarm CORRUPT (${raisedBy}): a member's data differs from the others'; stop writing, keep a snapshot of a sound member, and replace the corrupt one (remove-member, then add-member)`;
    default:
      return `alarm ${alarm.alarm} (${raisedBy}): see 'etcdctl alarm list' and etcd's documentation`;
  }
}

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** Where a member's machine shows its boot: Machines.bootConsole. */
export type BootConsole = (member: string) => string;

/**
 * What to do about members that did not answer: unreachable from here, or a boot that never started
 * etcd (a failed cloud-init step says why only on the machine, in its console).
 */
export function notAnsweringAdvice(members: readonly string[], bootConsole: BootConsole): string[] {
  if (members.length === 0) return [];
  const [it, where] = members.length === 1 ? ['it', 'its console'] : ['them', 'their consoles'];
  return [
    `${members.join(', ')} did not answer. If this machine can reach ${it}, etcd may never have started there. On ${where}, 'cloud-init status --long' and 'systemctl --failed' name a boot step that failed:`,
    ...members.map((member) => `  ${member}: ${bootConsole(member)}`),
  ];
}

/** Pure: the table `health` prints; `bootConsole` says where a member that did not answer shows its boot. */
export function renderHealthTable(report: HealthReport, bootConsole: BootConsole = operatorMachines.bootConsole): string {
  const header = ['MEMBER', 'ENDPOINT', 'HEALTHY', 'LEADER', 'VERSION', 'DB SIZE', 'IN USE', 'QUOTA', 'RAFT INDEX', 'CERT EXPIRES', 'CERT SERIAL', 'ALARMS'];
  const rows = report.members.map((member) => [
    member.name,
    member.endpoint,
    member.healthy ? 'yes' : 'NO',
    member.leader ? '*' : member.learner ? 'learner' : '',
    member.version ?? '-',
    formatBytes(member.dbSizeBytes),
    formatBytes(member.dbSizeInUseBytes),
    member.quotaPercent === undefined ? '-' : `${member.quotaPercent.toFixed(1)}%`,
    member.raftIndex === undefined ? '-' : String(member.raftIndex),
    member.certExpiresInDays === undefined ? '-' : `${member.certExpiresInDays}d`,
    member.certSerial ?? '-',
    member.alarms.length === 0 ? '-' : member.alarms.join(','),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  const lines = [line(header), ...rows.map(line)];
  lines.push(`Quota: ${formatBytes(report.quotaBackendBytes)} per member (QUOTA is DB SIZE against it; etcd refuses writes at 100%).`);
  for (const certificate of report.certificates) lines.push(`${certificate.file} expires in ${certificate.expiresInDays}d (${certificate.notAfter.slice(0, 10)})`);
  for (const member of report.members.filter((candidate) => candidate.learner)) {
    lines.push(`${member.name} is a learner: it gets the data but has no vote until it promotes itself (etcd-promote.service on the node).`);
  }
  if (report.healthy) {
    lines.push(`Cluster ${report.clusterName}: ${report.members.length} member(s) healthy.`);
  } else {
    lines.push(`Cluster ${report.clusterName}: ${report.problems.length} problem(s):`, ...report.problems.map((problem) => `  - ${problem}`));
    lines.push(...notAnsweringAdvice(report.members.filter(neverAnswered).map((member) => member.name), bootConsole));
  }
  return `${lines.join('\n')}\n`;
}
