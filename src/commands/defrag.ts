import type { CommandContext } from '../context.js';
import { DEFRAG_CALL_SECONDS } from '../defaults.js';
import { checkMembers, couldNotCheck, formatBytes, quotaBackendBytesOf, unreachable } from '../day2/health.js';
import { folderFromFlags, openCluster, parseTimeoutMs, refuseDuringReplacement, type OpenCluster } from '../day2/open-cluster.js';
import { CliError, EXIT_FAILURE } from '../errors.js';
import { alarmDisarm, alarmList, compact, defragment, firstAnswer, hexMemberId, memberStatus, type ClientOptions, type EtcdAlarm } from '../etcd/client.js';
import type { ParsedOptions } from '../options.js';
import { writeResult } from '../result.js';

/** The three changes defrag makes; --dry-run swaps in calls that print each and make none. */
interface DatabaseCalls {
  readonly dryRun: boolean;
  compact(endpoint: string, revision: string, client: ClientOptions): Promise<void>;
  defragment(endpoint: string, client: ClientOptions): Promise<void>;
  disarm(endpoint: string, alarm: EtcdAlarm, client: ClientOptions): Promise<void>;
}

const realCalls: DatabaseCalls = { dryRun: false, compact, defragment, disarm: alarmDisarm };

function dryRunCalls(progress: (line: string) => void): DatabaseCalls {
  return {
    dryRun: true,
    compact: async (endpoint, revision) => progress(`[dry-run] etcd ${endpoint}: compact the history up to revision ${revision} (physical)`),
    defragment: async (endpoint) => progress(`[dry-run] etcd ${endpoint}: defragment`),
    disarm: async (endpoint, alarm) => progress(`[dry-run] etcd ${endpoint}: alarm disarm ${alarm.alarm} of member ${hexMemberId(alarm.memberID)}`),
  };
}

/** One member's defragmentation, as the JSON result (schema/output/defrag.schema.json) reports it. */
interface MemberDefrag {
  readonly name: string;
  readonly endpoint: string;
  readonly dbSizeBefore: number | undefined;
  readonly dbSizeAfter: number | undefined;
  readonly dbSizeInUseAfter: number | undefined;
  readonly startedAt: string;
  readonly finishedAt: string;
}

interface DefragResult {
  readonly clusterName: string;
  readonly dryRun: boolean;
  readonly quotaBackendBytes: number;
  /** The revision the history was compacted up to (the cluster's current one). */
  readonly compactedTo: string | undefined;
  readonly members: readonly MemberDefrag[];
  readonly disarmed: readonly { readonly alarm: string; readonly memberId: string }[];
  /** Alarms left armed: NOSPACE while a database is still at its quota, and any other kind (CORRUPT). */
  readonly leftArmed: readonly { readonly alarm: string; readonly memberId: string; readonly reason: string }[];
}

/** Holds the folder's lock: no add-member, roll or repair changes the membership meanwhile. */
export function runDefrag(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const timeoutMs = parseTimeoutMs(flags);
  const folder = folderFromFlags(flags, context);
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const calls = flags['dry-run'] === true ? dryRunCalls(progress) : realCalls;
  return folder.withLock('defrag', context.now(), async () => {
    refuseDuringReplacement(folder, 'defrag');
    const cluster = openCluster(folder);
    const result = await defrag(cluster, { tls: cluster.adminTls, timeoutMs }, calls, progress, context);
    writeResult(context, result, () => renderDefrag(result));
    return result.leftArmed.length === 0 ? 0 : EXIT_FAILURE;
  });
}

/**
 * preflight (every member answers) -> compact to the current revision -> defragment each member,
 * one at a time, the leader last -> disarm NOSPACE once every database is below the quota. The
 * order is etcd's own recovery from NOSPACE (etcd docs, maintenance: "space quota").
 */
async function defrag(cluster: OpenCluster, client: ClientOptions, calls: DatabaseCalls, progress: (line: string) => void, context: CommandContext): Promise<DefragResult> {
  const { plan } = cluster;
  const quota = quotaBackendBytesOf(plan);
  const health = await checkMembers(plan, client, context.now());
  const silent = health.filter((member) => member.version === undefined);
  if (calls.dryRun && unreachable(health)) {
    progress(couldNotCheck(health, "the members' status, the revision and the alarms"));
  } else if (silent.length > 0) {
    throw new CliError('preflight', `every member must answer to be defragmented, and ${silent.map((member) => `${member.name} (${member.endpoint}: ${member.error ?? 'no answer'})`).join('; ')} did not; run health, bring it back (or repair it), then defrag again`);
  }
  const answering = health.filter((member) => member.version !== undefined).map((member) => member.endpoint);
  const endpoints = answering.length > 0 ? answering : plan.members.map((member) => member.clientUrl);

  // 1. compact: the history up to now, so defragmenting gives back every page an old revision held.
  const revision = answering.length > 0 ? (await firstAnswer(endpoints, (endpoint) => memberStatus(endpoint, client))).value.header?.revision : undefined;
  // Only a dry run that reached no member goes on without it: it still shows the step.
  const target = revision ?? 'now (not read: no member answered)';
  progress(`compacting the history up to revision ${target}`);
  await step(`compact to revision ${target}`, [], () => firstAnswer(endpoints, (endpoint) => calls.compact(endpoint, target, client)));

  // 2. defragment: one member at a time (each blocks while it runs), the leader last so leadership moves at most once.
  const ordered = [...health].sort((a, b) => Number(a.leader) - Number(b.leader));
  const members: MemberDefrag[] = [];
  const defragClient = { ...client, timeoutMs: Math.max(client.timeoutMs, DEFRAG_CALL_SECONDS * 1000) };
  for (const member of ordered) {
    const startedAt = context.now().toISOString();
    progress(`defragmenting ${member.name}${member.dbSizeBytes === undefined ? '' : ` (${formatBytes(member.dbSizeBytes)}, ${formatBytes(member.dbSizeInUseBytes)} in use)`}`);
    await step(`defragment ${member.name} (${member.endpoint})`, members, () => calls.defragment(member.endpoint, defragClient));
    const finishedAt = context.now().toISOString();
    const after = await memberStatus(member.endpoint, client).catch(() => undefined);
    const dbSizeAfter = after?.dbSize === undefined ? undefined : Number(after.dbSize);
    const dbSizeInUseAfter = after?.dbSizeInUse === undefined ? undefined : Number(after.dbSizeInUse);
    members.push({ name: member.name, endpoint: member.endpoint, dbSizeBefore: member.dbSizeBytes, dbSizeAfter, dbSizeInUseAfter, startedAt, finishedAt });
  }

  // 3. disarm NOSPACE, only once no database is at the quota (etcd would raise it again at the next write).
  const alarms = answering.length > 0 ? (await firstAnswer(endpoints, (endpoint) => alarmList(endpoint, client))).value : [];
  const full = members.filter((member) => (member.dbSizeInUseAfter ?? 0) >= quota);
  const disarmed: DefragResult['disarmed'][number][] = [];
  const leftArmed: DefragResult['leftArmed'][number][] = [];
  for (const alarm of alarms) {
    if (alarm.alarm !== 'NOSPACE') {
      leftArmed.push({ alarm: alarm.alarm, memberId: alarm.memberID, reason: 'defrag disarms NOSPACE only; run health for what to do' });
    } else if (full.length > 0) {
      leftArmed.push({
        alarm: alarm.alarm,
        memberId: alarm.memberID,
        reason: `${full.map((member) => `${member.name} holds ${formatBytes(member.dbSizeInUseAfter)}`).join(', ')} of data, at the ${formatBytes(quota)} quota still: delete keys you no longer need, then run defrag again`,
      });
    } else {
      progress(`disarming ${alarm.alarm} of member ${hexMemberId(alarm.memberID)}`);
      await step(`alarm disarm ${alarm.alarm} of member ${hexMemberId(alarm.memberID)}`, members, () => firstAnswer(endpoints, (endpoint) => calls.disarm(endpoint, alarm, client)));
      disarmed.push({ alarm: alarm.alarm, memberId: alarm.memberID });
    }
  }
  return { clusterName: plan.clusterName, dryRun: calls.dryRun, quotaBackendBytes: quota, compactedTo: revision, members, disarmed, leftArmed };
}

/** One etcd call of the flow; a failure says what was done before it, and that a re-run is safe (every step can be repeated). */
async function step<T>(what: string, done: readonly MemberDefrag[], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const before = done.length > 0 ? ` (${done.map((member) => member.name).join(', ')} defragmented already)` : '';
    throw new CliError('api', `${what} failed: ${(error as Error).message}${before}; run health, then defrag again`);
  }
}

function renderDefrag(result: DefragResult): string {
  const lines = [
    `${result.dryRun ? 'Dry run: would defragment' : 'Defragmented'} cluster ${result.clusterName}${result.compactedTo === undefined ? '' : ` after compacting to revision ${result.compactedTo}`}:`,
    ...result.members.map((member) =>
      result.dryRun
        ? `  ${member.name.padEnd(8)}${member.dbSizeBefore === undefined ? 'size not read' : `${formatBytes(member.dbSizeBefore)}, ${formatBytes(member.dbSizeInUseAfter)} in use`} (quota ${formatBytes(result.quotaBackendBytes)})`
        : `  ${member.name.padEnd(8)}${formatBytes(member.dbSizeBefore)} -> ${formatBytes(member.dbSizeAfter)} (quota ${formatBytes(result.quotaBackendBytes)})`,
    ),
    ...result.disarmed.map((alarm) => `${result.dryRun ? 'Would disarm' : 'Disarmed'} ${alarm.alarm} of member ${hexMemberId(alarm.memberId)}: writes are accepted again.`),
    ...result.leftArmed.map((alarm) => `Left ${alarm.alarm} of member ${hexMemberId(alarm.memberId)} armed: ${alarm.reason}.`),
  ];
  return `${lines.join('\n')}\n`;
}
