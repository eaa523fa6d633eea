/**
 * Rolling replacement: the engine of `roll` and `repair`. Each member is replaced by a new machine
 * with a new name, a freshly minted certificate and the roll's settings; roll.json records every
 * action done, so a re-run after a crash or Ctrl-C goes on with the next action and never makes a
 * second replacement for the same member.
 *
 *   roll:   add (learner) -> promote (its machine joins, catches up, is promoted) -> remove-old -> retire-old
 *   repair: remove-old (the dead member) -> retire-old -> add -> promote
 *
 * A roll of every member ends with one more step, recorded apart from the members' (current.renewCredentials):
 * the admin and client certificates re-issued with the same CA, the roll's key type and new keys, and
 * kubernetes/ rewritten.
 */
import {
  FOLDER_FILES,
  recordKeyType,
  rollStateFile,
  type ClusterFolder,
  type ReplaceAction,
  type ReplacementStep,
  type RollState,
  type RollTarget,
} from '../cluster-folder.js';
import { mintSources, type CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { EtcdCallError, firstAnswer, hexMemberId, memberList, memberStatus, memberVersion, type ClientOptions, type EtcdMember } from '../etcd/client.js';
import { certificateFiles, recordFiles, userDataFile } from '../output.js';
import { describeKeySpec, keySpecOf } from '../pki/key-types.js';
import { issueLeaf, readClusterPki, withReissued, type ClusterPki, type IssuedCert } from '../pki/mint.js';
import type { ClusterPlan, MemberPlan } from '../plan.js';
import { withMembers, withRollTarget } from '../record-codec.js';
import { renderUserData } from '../render.js';
import { parseEtcdVersion } from '../versions.js';
import { crashAtStep } from '../write.js';
import type { Day2Effects } from './effects.js';
import { checkMember, checkMembers, SETTLE_MS } from './health.js';
import type { Machines } from './machines.js';
import { addWithRetry, membershipDrift, withJoiningMember } from './membership.js';
import { openCluster, planOf, type OpenCluster } from './open-cluster.js';
import { versionCheckShortfall } from './version-check.js';

export type Operation = 'roll' | 'repair';

export const ACTION_ORDER: Record<Operation, readonly ReplaceAction[]> = {
  roll: ['add', 'promote', 'remove-old', 'retire-old'],
  repair: ['remove-old', 'retire-old', 'add', 'promote'],
};

/** What one run of roll or repair works with. */
export interface ReplaceRun {
  readonly context: CommandContext;
  readonly folder: ClusterFolder;
  readonly effects: Day2Effects;
  readonly operation: Operation;
  /** Per etcd call. */
  readonly timeoutMs: number;
  /** The bound for a replacement to join, catch up and be promoted, and for the cluster version at the end. */
  readonly catchUpMs: number;
  readonly pollMs: number;
  /** The machines of the cluster as a step opened it (machines.ts): the operator's, or droplets. */
  readonly machines: (cluster: OpenCluster) => Machines;
  /** Write each replacement's user-data to stdout too. */
  readonly print: boolean;
  readonly sleep: (ms: number) => Promise<void>;
}

/** The result a finished run reports. */
export interface ReplaceOutcome {
  readonly steps: readonly ReplacementStep[];
  readonly memberVersions: ReadonlyMap<string, string>;
  readonly clusterVersion: string;
  readonly retiredMachines: readonly string[];
  /** The roll's last step, when it was part of the plan: what it re-issued (its files as folder paths). */
  readonly renewedCredentials: RenewedCredentials | undefined;
}

export interface RenewedCredentials {
  /** The keys' type, for people: `ECDSA P-256`. */
  readonly keys: string;
  readonly admin: { readonly certificate: string; readonly notAfter: string };
  readonly clients: readonly { readonly name: string; readonly certificate: string; readonly notAfter: string }[];
  /** The folder's kubernetes/ when the cluster has the kit. */
  readonly kubernetes: string | undefined;
}

const progressOf = (run: ReplaceRun) => (line: string) => void run.context.stderr.write(`${line}\n`);

/** How many times one run adds a step's replacement anew after it left the cluster, before it stops. */
const MAX_READDS = 3;

/**
 * Runs every step's remaining actions in order, then finishes the roll. Before each action the
 * step is reconciled with the running cluster (reconcileStep): roll.json says what was intended,
 * the member list what is true.
 */
export async function runReplacement(run: ReplaceRun, initial: RollState): Promise<ReplaceOutcome> {
  let state = initial;
  const retiredMachines: string[] = [];
  for (let index = 0; index < state.current!.steps.length; index += 1) {
    let readds = 0;
    for (;;) {
      if (!ACTION_ORDER[run.operation].some((action) => !state.current!.steps[index]!.done.includes(action))) break;
      const reconciled = await reconcileStep(run, state, state.current!.steps[index]!);
      if (reconciled.forgotten) readds += 1;
      if (readds > MAX_READDS) {
        throw new CliError('catch-up', `replacement ${state.current!.steps[index]!.replacement.name} left the cluster ${readds} times during this run; find out what removes it (its machine's log), then run ${run.operation} again, or undo the ${run.operation} with '${run.operation} --abort'`);
      }
      state = reconciled.state;
      const step = state.current!.steps[index]!;
      const action = ACTION_ORDER[run.operation].find((candidate) => !step.done.includes(candidate));
      if (!action) break;
      const result = await ACTIONS[action](run, state, step);
      state = result.state;
      if (result.forgotten) readds += 1;
      if (result.retired) retiredMachines.push(result.retired);
    }
  }
  if (state.current!.renewCredentials?.done === false) state = await renewCredentials(run, state);
  return finish(run, state, retiredMachines);
}

/** The member list as any member of cluster.json answers it (the step's old member and replacement asked last: either may be dead or unstarted); undefined when none does (the action then says why). */
async function observedMembers(cluster: OpenCluster, client: ClientOptions, step: ReplacementStep): Promise<{ endpoint: string; value: readonly EtcdMember[] } | undefined> {
  const last = (name: string) => Number(name === step.old || name === step.replacement.name);
  const endpoints = [...cluster.plan.members].sort((a, b) => last(a.name) - last(b.name)).map((member) => member.clientUrl);
  return firstAnswer(endpoints, (candidate) => memberList(candidate, client)).catch(() => undefined);
}

/**
 * Decide from the cluster, not only from roll.json, before each action:
 * - the old member is no longer in the cluster (removed by hand, or a repair's dead member gone
 *   already): cluster.json and the folder drop it, and remove-old counts as done;
 * - the replacement was added but its member ID is no longer in the cluster (a learner removed by
 *   etcdctl or etcd, a replacement removed by hand): it is forgotten (its files and machine go),
 *   so add runs again and adds it anew (or adopts a member a person added at its peer URL).
 */
async function reconcileStep(run: ReplaceRun, state: RollState, step: ReplacementStep): Promise<{ state: RollState; forgotten?: boolean }> {
  const cluster = openCluster(run.folder);
  const running = (await observedMembers(cluster, { tls: cluster.adminTls, timeoutMs: run.timeoutMs }, step))?.value;
  if (!running) return { state };
  let next = state;
  if (!step.done.includes('remove-old') && !running.some((member) => member.peerURLs?.includes(step.oldPeerUrl))) {
    progressOf(run)(`${step.old}: no longer in the cluster (removed by hand?); dropping it from cluster.json`);
    next = dropOld(run, next, step);
    const dropped = next.current!.steps.find((candidate) => candidate.old === step.old)!;
    const learner = running.find((member) => member.ID === dropped.memberId);
    if (learner && !learner.name && !dropped.done.includes('promote')) {
      // Its user-data lists the old member in initial-cluster, and etcd refuses to join a cluster that differs: add adopts the learner and writes it again.
      return { state: await forgetReplacement(run, next, dropped, `${step.old} left the cluster before ${dropped.replacement.name} started`) };
    }
  }
  const current = next.current!.steps.find((candidate) => candidate.old === step.old)!;
  if (current.done.includes('add') && current.memberId !== undefined && !running.some((member) => member.ID === current.memberId)) {
    const reason = `replacement ${current.replacement.name} (ID ${hexMemberId(current.memberId)}) is no longer in the cluster (removed by hand, or by etcd)`;
    progressOf(run)(`${step.old}: ${reason}; adding it anew`);
    return { state: await forgetReplacement(run, next, current, reason), forgotten: true };
  }
  return { state: next };
}

/**
 * A replacement out of roll.json's way: its machine retired (a droplet), its files and its
 * cluster.json entry gone, add and promote to do again. The cluster is not changed here.
 */
async function forgetReplacement(run: ReplaceRun, state: RollState, step: ReplacementStep, reason: string): Promise<RollState> {
  const now = run.context.now();
  const cluster = openCluster(run.folder);
  const machines = run.machines(cluster);
  if (machines.holds(step.replacement.name)) {
    progressOf(run)(`${step.old}: ${await machines.retire(step.replacement.name, `Run ${run.operation} again: it finishes this first.`)}`);
  }
  const members = cluster.record.members.filter((member) => member.name !== step.replacement.name);
  const plan = planOf(cluster, withMembers(cluster.input, members));
  const { memberId: _dropped, ...rest } = step;
  const next = withStep(state, { ...rest, done: step.done.filter((action) => action !== 'add' && action !== 'promote'), lastFailure: `${now.toISOString()}: ${reason}` });
  run.effects.updateFolder({
    files: [...recordFiles(plan, clusterPki(plan, cluster), now), rollStateFile(next)],
    remove: replacementFiles(step),
  });
  return next;
}

const replacementFiles = (step: ReplacementStep) => [FOLDER_FILES.cert(step.replacement.name), FOLDER_FILES.key(step.replacement.name), FOLDER_FILES.userData(step.replacement.name)];
const oldFiles = (step: ReplacementStep) => [FOLDER_FILES.cert(step.old), FOLDER_FILES.key(step.old), FOLDER_FILES.userData(step.old), FOLDER_FILES.renewScript(step.old)];

/** The old member out of cluster.json and the folder, remove-old recorded: it is out of the cluster. */
function dropOld(run: ReplaceRun, state: RollState, step: ReplacementStep): RollState {
  const now = run.context.now();
  const cluster = openCluster(run.folder);
  const members = cluster.record.members.filter((member) => member.name !== step.old);
  const plan = planOf(cluster, withMembers(cluster.input, members));
  const current = state.current!.steps.find((candidate) => candidate.old === step.old)!;
  const next = withStep(state, markDone(current, 'remove-old'));
  run.effects.updateFolder({ files: [...recordFiles(plan, clusterPki(plan, cluster), now), rollStateFile(next)], remove: oldFiles(step) });
  return next;
}

interface ActionResult {
  readonly state: RollState;
  readonly retired?: string;
  /** The replacement left the cluster while the action waited for it: it is to be added anew. */
  readonly forgotten?: boolean;
}

type Action = (run: ReplaceRun, state: RollState, step: ReplacementStep) => Promise<ActionResult>;

const ACTIONS: Record<ReplaceAction, Action> = {
  add: addReplacement,
  promote: promoteReplacement,
  'remove-old': removeOld,
  'retire-old': retireOld,
};

/** The state with one step changed (matched by its old member). */
function withStep(state: RollState, step: ReplacementStep): RollState {
  const current = state.current!;
  return { ...state, current: { ...current, steps: current.steps.map((candidate) => (candidate.old === step.old ? step : candidate)) } };
}

function markDone(step: ReplacementStep, action: ReplaceAction): ReplacementStep {
  return { ...step, done: [...step.done, action] };
}

/** The replacement as a member of `plan` (it must be one). */
function memberOf(plan: ClusterPlan, name: string): MemberPlan {
  const member = plan.members.find((candidate) => candidate.name === name);
  if (!member) throw new Error(`${name} is not in the plan`);
  return member;
}

/** The certificates of the plan's members from pki/, plus `extra` (a replacement's, not written yet). */
function clusterPki(plan: ClusterPlan, cluster: OpenCluster, extra?: ClusterPki['all'][number]): ClusterPki {
  const withoutExtra = extra ? { ...plan, members: plan.members.filter((member) => member.name !== extra.fileBase) } : plan;
  const current = readClusterPki(withoutExtra, cluster.pki);
  if (!extra) return current;
  return { ...current, members: new Map([...current.members, [extra.fileBase, extra]]), all: [...current.all, extra] };
}


/**
 * Every current member healthy (the replaced one too, on a roll); the endpoint of the leader. The
 * step before may have just changed membership, leadership or DNS: unhealthy answers are asked
 * again for up to SETTLE_MS before the step refuses.
 */
async function requireHealthy(run: ReplaceRun, cluster: OpenCluster, client: ClientOptions, what: string): Promise<string> {
  const deadline = Date.now() + SETTLE_MS;
  let waiting = false;
  for (;;) {
    const health = await checkMembers(cluster.plan, client, run.context.now());
    const unhealthy = health.filter((member) => !member.healthy);
    if (unhealthy.length === 0) return (health.find((member) => member.leader) ?? health[0]!).endpoint;
    const problems = unhealthy.map((member) => `${member.name} (${member.error})`).join('; ');
    if (Date.now() >= deadline) {
      throw new CliError('preflight', `refusing to ${what}: ${problems}; fix it, or replace a dead member with 'etcd-cloudinit repair --member <name>', then run ${run.operation} again`);
    }
    if (!waiting) progressOf(run)(`waiting up to ${SETTLE_MS / 1000} s for every member to be healthy before it can ${what}: ${problems}`);
    waiting = true;
    await run.sleep(Math.min(run.pollMs, Math.max(0, deadline - Date.now())));
  }
}

/** add: preflight, mint, member add as a learner, write its files and the step in one folder update. */
async function addReplacement(run: ReplaceRun, state: RollState, step: ReplacementStep): Promise<ActionResult> {
  const progress = progressOf(run);
  const now = run.context.now();
  const current = state.current!;
  const cluster = openCluster(run.folder);
  const client = { tls: cluster.adminTls, timeoutMs: run.timeoutMs };
  const endpoint = await requireHealthy(run, cluster, client, `add ${step.replacement.name}`);

  const members = [...cluster.record.members, step.replacement];
  const basePlan = planOf(cluster, withMembers(withRollTarget(cluster.input, current.target), members));
  const placeholderPlan = withJoiningMember(basePlan, step.replacement.name, 'f'.repeat(16));
  const joining = memberOf(placeholderPlan, step.replacement.name);

  const running = await memberList(endpoint, client).catch((error: Error) => {
    throw new CliError('preflight', `member list on ${endpoint} failed: ${error.message}`);
  });
  const already = running.find((member) => member.peerURLs?.includes(joining.peerUrl));
  const learner = running.find((member) => member.isLearner && member !== already);
  if (learner) throw new CliError('preflight', `${learner.name || 'an unstarted member'} (ID ${hexMemberId(learner.ID)}) is a learner that is not part of this ${run.operation}; wait until it is promoted or remove it`);
  const drift = membershipDrift(cluster.plan.members, running.filter((member) => member !== already));
  if (drift.length > 0) throw new CliError('preflight', `cluster.json and the running cluster disagree: ${drift.join('; ')}`);

  // Everything that can fail offline happens before the cluster changes.
  const ca = readClusterPki(cluster.plan, cluster.pki).ca;
  const cert = await issueLeaf(placeholderPlan, step.replacement.name, { certPem: ca.certPem, keyPem: ca.keyPem }, {
    now,
    ...mintSources(run.context),
  });
  const pki = clusterPki(placeholderPlan, cluster, cert);
  renderUserData(placeholderPlan, pki, step.replacement.name);

  const memberId = already?.ID ?? (await addWithRetry(run.effects, endpoint, joining.peerUrl, client, true)).member?.ID;
  if (memberId === undefined) throw new CliError('api', `member add ${joining.peerUrl} on ${endpoint} returned no member ID`);
  progress(`${step.old}: ${already ? 'found' : 'added'} replacement ${step.replacement.name} (${joining.host}, ID ${hexMemberId(memberId)}) as a learner`);
  const plan = withJoiningMember(basePlan, step.replacement.name, hexMemberId(memberId));
  const userData = renderUserData(plan, pki, step.replacement.name);
  // cluster.json keeps the cluster's settings until the roll ends; only its member list changes now.
  const recordPlan = planOf(cluster, withMembers(cluster.input, members));
  const next = withStep(state, { ...markDone(step, 'add'), memberId, lastFailure: undefined });
  run.effects.updateFolder({
    files: [...certificateFiles(cert), userDataFile(step.replacement.name, userData), ...recordFiles(recordPlan, clusterPki(recordPlan, cluster, cert), now), rollStateFile(next)],
  });
  if (run.print) run.context.stdout.write(userData);
  return { state: next };
}

/**
 * promote: the replacement's machine (a droplet on create-droplets clusters; otherwise the operator
 * boots it) joins, catches up and is promoted, within the bound; else it is rolled back.
 */
async function promoteReplacement(run: ReplaceRun, state: RollState, step: ReplacementStep): Promise<ActionResult> {
  const progress = progressOf(run);
  const cluster = openCluster(run.folder);
  const client = { tls: cluster.adminTls, timeoutMs: run.timeoutMs };
  const member = memberOf(cluster.plan, step.replacement.name);
  const userDataPath = run.folder.shownFile(FOLDER_FILES.userData(member.name));
  const deadline = Date.now() + run.catchUpMs;
  try {
    const advice = `Run ${run.operation} again to go on: it finds the droplet or creates it.`;
    const machine = await run.machines(cluster).provision(member, () => cluster.folder.readUserData(member.name), state.current!.target.droplet, advice);
    progress(`${step.old}: ${machine ?? `boot the replacement machine ${member.host} with ${userDataPath} now; waiting up to ${Math.round(run.catchUpMs / 1000)} s for it to join and catch up`}`);
    await waitPromoted(run, cluster, client, step, deadline);
  } catch (error) {
    if (error instanceof ReplacementGone) {
      progress(`${step.old}: ${error.message}; adding it anew`);
      return { state: await forgetReplacement(run, state, step, error.message), forgotten: true };
    }
    if (!(error instanceof CatchUpTimeout)) throw error;
    return rollBack(run, state, step, error.message);
  }
  progress(`${step.old}: replacement ${member.name} is a voting member and healthy`);
  const next = withStep(state, markDone(step, 'promote'));
  run.effects.updateFolder({ files: [rollStateFile(next)] });
  // A voter now, and recorded so: the stable client name lists it (a learner never is). Killed
  // before this, the re-run's remove-old lists it with the other members it keeps.
  const listed = await run.machines(cluster).listClients(cluster.plan.members.map((candidate) => candidate.name));
  if (listed) progress(`${step.old}: ${listed}`);
  return { state: next };
}

class CatchUpTimeout extends Error {}
/** The replacement's member ID left the cluster while roll waited for it (etcdctl member remove, or etcd). */
class ReplacementGone extends Error {}

/** Until the replacement is a voter and healthy: promotes it as soon as etcd allows (the node's own etcd-promote.service may win). */
async function waitPromoted(run: ReplaceRun, cluster: OpenCluster, client: ClientOptions, step: ReplacementStep, deadline: number): Promise<void> {
  const voters = cluster.plan.members.filter((member) => member.name !== step.replacement.name).map((member) => member.clientUrl);
  const replacement = memberOf(cluster.plan, step.replacement.name);
  let last = 'its machine has not started etcd yet';
  for (;;) {
    try {
      const { endpoint, value: running } = await firstAnswer(voters, (candidate) => memberList(candidate, client));
      const member = running.find((candidate) => candidate.ID === step.memberId);
      if (!member) throw new ReplacementGone(`replacement ${step.replacement.name} (ID ${hexMemberId(step.memberId!)}) is no longer in the cluster (removed by hand, or by etcd)`);
      if (member.isLearner && member.name) {
        try {
          await run.effects.memberPromote(endpoint, member.ID, client);
        } catch (error) {
          last = (error as Error).message;
        }
      }
      const now = await memberList(endpoint, client);
      if (now.find((candidate) => candidate.ID === step.memberId)?.isLearner !== true) {
        const health = await checkMember(replacement.name, replacement.clientUrl, client, run.context.now());
        if (health.healthy) return;
        last = `promoted, not healthy yet: ${health.error}`;
      } else if (!member.name) {
        last = 'its machine has not started etcd yet';
      }
    } catch (error) {
      if (error instanceof CliError || error instanceof ReplacementGone) throw error;
      last = (error as Error).message;
    }
    if (Date.now() >= deadline) throw new CatchUpTimeout(`${step.replacement.name} did not join and catch up within ${Math.round(run.catchUpMs / 1000)} s (last: ${last})`);
    await run.sleep(Math.min(run.pollMs, Math.max(0, deadline - Date.now())));
  }
}

/** A replacement that did not catch up: out of the cluster, its machine and files gone; the old member still serves. */
async function rollBack(run: ReplaceRun, state: RollState, step: ReplacementStep, reason: string): Promise<never> {
  const progress = progressOf(run);
  const cluster = openCluster(run.folder);
  const client = { tls: cluster.adminTls, timeoutMs: run.timeoutMs };
  const others = cluster.plan.members.filter((member) => member.name !== step.replacement.name);
  progress(`${step.old}: ${reason}; rolling ${step.replacement.name} back`);
  const { endpoint, value: running } = await firstAnswer(
    others.map((member) => member.clientUrl),
    (candidate) => memberList(candidate, client),
  ).catch((error: Error) => {
    throw new CliError('api', `no member answered member list while rolling ${step.replacement.name} back: ${error.message}`);
  });
  if (running.some((member) => member.ID === step.memberId)) {
    await run.effects.memberRemove(endpoint, step.memberId!, client).catch((error: Error) => {
      throw new CliError('api', `member remove ${step.replacement.name} (ID ${hexMemberId(step.memberId!)}) failed while rolling it back: ${error.message}; run ${run.operation} again`);
    });
  }
  const managed = run.machines(cluster).managed;
  await forgetReplacement(run, state, step, reason);
  throw new CliError(
    'catch-up',
    `${reason}. Rolled back: ${step.replacement.name} is out of the cluster${managed ? ' and its droplet deleted' : ''}, and ${step.old} still serves. Fix what kept it from joining (its console shows the boot), then run ${run.operation} again to retry.`,
  );
}

/** remove-old: leadership moved off the old member first (roll), then member remove; its files and record go. */
async function removeOld(run: ReplaceRun, state: RollState, step: ReplacementStep): Promise<ActionResult> {
  const progress = progressOf(run);
  const cluster = openCluster(run.folder);
  const client = { tls: cluster.adminTls, timeoutMs: run.timeoutMs };
  const old = cluster.plan.members.find((member) => member.name === step.old);
  const others = cluster.plan.members.filter((member) => member.name !== step.old);
  const { endpoint, value: running } = await firstAnswer(
    others.map((member) => member.clientUrl),
    (candidate) => memberList(candidate, client),
  ).catch((error: Error) => {
    throw new CliError('preflight', `no member but ${step.old} answered member list: ${error.message}`);
  });
  const target = running.find((member) => member.peerURLs?.includes(step.oldPeerUrl));
  if (target) {
    // Delisted before it is removed: a client resolving the stable name is not sent to a member on its way out.
    const listed = await run.machines(cluster).listClients(others.map((member) => member.name));
    if (listed) progress(`${step.old}: ${listed}`);
    if (old && run.operation === 'roll') await moveLeadershipOff(run, old, target, step, client);
    await removeWithRetry(run, endpoint, target, step, client);
    progress(`${step.old}: removed from the cluster (ID ${hexMemberId(target.ID)})`);
  }
  return { state: dropOld(run, state, step) };
}

/** If the old member leads, hand leadership to the replacement (a caught-up voter) and wait until another member leads. */
async function moveLeadershipOff(run: ReplaceRun, old: MemberPlan, oldMember: EtcdMember, step: ReplacementStep, client: ClientOptions): Promise<void> {
  const status = await memberStatus(old.clientUrl, client).catch(() => undefined);
  if (status?.leader !== oldMember.ID) return;
  const progress = progressOf(run);
  await run.effects.moveLeader(old.clientUrl, step.memberId!, client).catch((error: Error) => {
    throw new CliError('api', `move leader from ${step.old} to ${step.replacement.name} failed: ${error.message}; run ${run.operation} again`);
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const now = await memberStatus(old.clientUrl, client).catch(() => undefined);
    if (now?.leader !== undefined && now.leader !== oldMember.ID && now.leader !== '0') break;
    if (Date.now() >= deadline) throw new CliError('api', `leadership did not move off ${step.old} within 30 s; run ${run.operation} again`);
    await run.sleep(200);
  }
  progress(`${step.old}: was the leader; leadership moved to ${step.replacement.name}`);
}

/** etcd refuses a removal while some member has not been connected for 5 s (a replacement that just became active). */
async function removeWithRetry(run: ReplaceRun, endpoint: string, target: EtcdMember, step: ReplacementStep, client: ClientOptions): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await run.effects.memberRemove(endpoint, target.ID, client);
      return;
    } catch (error) {
      const retryable = error instanceof EtcdCallError && /unhealthy cluster/.test(error.message);
      if (!retryable || attempt === 10) throw new CliError('api', `member remove ${step.old} (ID ${hexMemberId(target.ID)}) on ${endpoint} failed: ${(error as Error).message}; run ${run.operation} again`);
      await run.sleep(1500);
    }
  }
}

/** retire-old: a machine the tool made (a droplet and its A record) is deleted; otherwise the operator is told the machine may go. */
async function retireOld(run: ReplaceRun, state: RollState, step: ReplacementStep): Promise<ActionResult> {
  const progress = progressOf(run);
  const cluster = openCluster(run.folder);
  const machines = run.machines(cluster);
  let retired: string;
  if (machines.holds(step.old)) {
    retired = `${step.old}: ${await machines.retire(step.old, `Run ${run.operation} again to finish: it deletes what is left.`)}`;
  } else {
    retired = `${step.old}: out of the cluster; destroy its machine (${new URL(step.oldPeerUrl).hostname}) now: its key and certificate go with it`;
  }
  progress(retired);
  const finishedAt = run.context.now().toISOString();
  const next: RollState = {
    ...withStep(state, markDone(step, 'retire-old')),
    history: [...state.history, { old: step.old, replacement: step.replacement.name, operation: run.operation, finishedAt }],
  };
  run.effects.updateFolder({ files: [rollStateFile(next)] });
  return { state: next, retired };
}

/**
 * renew-credentials, once every member is replaced and healthy: the admin pair (what this roll
 * talks to the cluster with) and every client pair re-issued by the same CA with the target's key
 * type and new keys; cluster.json and kubernetes/ rewritten with them, and the step marked done,
 * in one folder update. Cut short before that update, a re-run issues them again; after it, the
 * step is done. The new admin pair must be accepted by the cluster before it replaces the old one.
 */
async function renewCredentials(run: ReplaceRun, state: RollState): Promise<RollState> {
  const progress = progressOf(run);
  const now = run.context.now();
  const current = state.current!;
  const cluster = openCluster(run.folder);
  const client = { tls: cluster.adminTls, timeoutMs: run.timeoutMs };
  const endpoint = await requireHealthy(run, cluster, client, 'renew the admin and client certificates');
  const existing = readClusterPki(cluster.plan, cluster.pki);
  const ca = { certPem: existing.ca.certPem, keyPem: existing.ca.keyPem };
  // Issued from the plan with the roll's key type: cluster.json takes it only when the roll ends.
  const issuePlan = planOf(cluster, withRollTarget(cluster.input, current.target));
  const options = {
    now,
    ...mintSources(run.context),
  };
  const admin = await issueLeaf(issuePlan, existing.admin.fileBase, ca, options);
  const clients = new Map<string, IssuedCert>();
  for (const cert of existing.all) if (cert.client !== undefined) clients.set(cert.fileBase, await issueLeaf(issuePlan, cert.fileBase, ca, options));
  await memberList(endpoint, { tls: { caPem: existing.ca.certPem, certPem: admin.certPem, keyPem: admin.keyPem }, timeoutMs: run.timeoutMs }).catch((error: Error) => {
    throw new CliError('api', `the cluster refused the new admin certificate (member list on ${endpoint}: ${error.message}); nothing was written; run ${run.operation} again`);
  });
  const pki = withReissued(existing, [admin, ...clients.values()]);
  const next: RollState = { ...state, current: { ...current, renewCredentials: { done: true } } };
  run.effects.updateFolder(
    { files: [...certificateFiles(admin), ...[...clients.values()].flatMap((cert) => certificateFiles(cert)), ...recordFiles(cluster.plan, pki, now), rollStateFile(next)] },
    crashAtStep(run.context.env, run.context.stderr),
  );
  progress(`renewed the admin certificate${clients.size > 0 ? ` and ${clients.size} client certificate(s)` : ''} with the cluster's CA (new ${describeKeySpec(keySpecOf(issuePlan))} keys)${cluster.plan.kubernetes ? `; rewrote ${run.folder.shownFile(FOLDER_FILES.kubernetesDir)}/` : ''}`);
  return next;
}

/** The roll's last step as the outcome reports it, read from the folder (it may have been done by an earlier run). */
function renewedCredentials(run: ReplaceRun, cluster: OpenCluster, target: RollTarget): RenewedCredentials {
  const pki = readClusterPki(cluster.plan, cluster.pki);
  const described = (cert: IssuedCert) => ({ certificate: run.folder.shownFile(FOLDER_FILES.cert(cert.fileBase)), notAfter: cert.notAfter });
  return {
    keys: describeKeySpec(keySpecOf({ keyType: recordKeyType(target), keySize: target.keySize })),
    admin: described(pki.admin),
    clients: pki.all.filter((cert) => cert.client !== undefined).map((cert) => ({ name: cert.client!, ...described(cert) })),
    kubernetes: cluster.plan.kubernetes ? run.folder.shownFile(FOLDER_FILES.kubernetesDir) : undefined,
  };
}

/** Every member healthy and on the target release, the cluster version reported; cluster.json takes the roll's settings. */
async function finish(run: ReplaceRun, state: RollState, retiredMachines: readonly string[]): Promise<ReplaceOutcome> {
  const progress = progressOf(run);
  const now = run.context.now();
  const current = state.current!;
  const cluster = openCluster(run.folder);
  const client = { tls: cluster.adminTls, timeoutMs: run.timeoutMs };
  const target = parseEtcdVersion(current.target.etcdVersion)!;
  const wanted = `${target.major}.${target.minor}`;
  const deadline = Date.now() + run.catchUpMs;
  let memberVersions = new Map<string, string>();
  let clusterVersion = 'unknown';
  let allOnTargetSince: number | undefined;
  let nudgedAt = 0;
  for (;;) {
    const answers = await Promise.allSettled(cluster.plan.members.map((member) => memberVersion(member.clientUrl, client)));
    memberVersions = new Map(cluster.plan.members.map((member, index) => {
      const answer = answers[index]!;
      return [member.name, answer.status === 'fulfilled' ? answer.value.etcdserver : `no answer (${(answer.reason as Error).message})`];
    }));
    const reported = answers.find((answer) => answer.status === 'fulfilled');
    clusterVersion = reported?.status === 'fulfilled' ? reported.value.etcdcluster : clusterVersion;
    const allOnTarget = [...memberVersions.values()].every((version) => version === current.target.etcdVersion.slice(1));
    if (allOnTarget && clusterVersion.startsWith(`${wanted}.`)) break;
    allOnTargetSince = allOnTarget ? (allOnTargetSince ?? Date.now()) : undefined;
    if (allOnTargetSince !== undefined && Date.now() - allOnTargetSince >= VERSION_NUDGE_MS && Date.now() - nudgedAt >= VERSION_NUDGE_MS) {
      nudgedAt = Date.now();
      await moveLeadershipForVersion(run, cluster, client, clusterVersion).catch((error: Error) => progress(`could not move leadership to have the cluster version decided again: ${error.message}`));
    }
    if (Date.now() >= deadline) {
      throw new CliError('catch-up', `every member was replaced, but within ${Math.round(run.catchUpMs / 1000)} s ${versionCheckShortfall(current.target.etcdVersion, clusterVersion, memberVersions)}; run ${run.operation} again to check`);
    }
    await run.sleep(run.pollMs);
  }
  const plan = planOf(cluster, withRollTarget(cluster.input, current.target));
  run.effects.updateFolder({ files: [...recordFiles(plan, clusterPki(plan, cluster), now), rollStateFile({ history: state.history })] });
  run.machines(cluster).settle(current.target.droplet);
  progress(`cluster ${cluster.record.clusterName}: every member on ${current.target.etcdVersion}, cluster version ${clusterVersion}`);
  const renewed = current.renewCredentials?.done ? renewedCredentials(run, cluster, current.target) : undefined;
  return { steps: current.steps, memberVersions, clusterVersion, retiredMachines, renewedCredentials: renewed };
}

/**
 * How long every member may run the target release while the cluster version lags before the roll
 * moves leadership. etcd's leader decides the cluster version every few seconds and at the first
 * commit of its term; seen on a 3.4.23 -> 3.5.30 roll on VMs: a leader that had only just joined
 * kept 3.4 for minutes, and the next leader decided 3.5 within seconds.
 */
const VERSION_NUDGE_MS = 60_000;

/** Hands leadership from the leader to another member: a new term, whose leader decides the cluster version again. */
async function moveLeadershipForVersion(run: ReplaceRun, cluster: OpenCluster, client: ClientOptions, clusterVersion: string): Promise<void> {
  const statuses = await Promise.all(cluster.plan.members.map(async (member) => ({ member, status: await memberStatus(member.clientUrl, client).catch(() => undefined) })));
  const leaderId = statuses.find(({ status }) => status?.leader !== undefined && status.leader !== '0')?.status?.leader;
  const leader = statuses.find(({ status }) => status?.header?.member_id === leaderId);
  const next = statuses.find(({ status }) => status?.header?.member_id !== undefined && status.header.member_id !== leaderId && status.isLearner !== true);
  if (!leader || !next) throw new Error('no leader, or no other voting member answered');
  await run.effects.moveLeader(leader.member.clientUrl, next.status!.header!.member_id!, client);
  progressOf(run)(`every member runs the new release, but the cluster version is still ${clusterVersion}: moved leadership from ${leader.member.name} to ${next.member.name}, whose first commit decides it again`);
}

/** What `--abort` did, and what it left as it was. */
export interface AbortOutcome {
  readonly undone: readonly string[];
  readonly left: readonly string[];
}

/**
 * `roll --abort`, `repair --abort`: undoes what can be undone, step by step, and clears the roll.
 * - a replacement that is a learner (not promoted) is removed from the cluster; one not in the
 *   cluster is only forgotten; either way its files, cluster.json entry and droplet go;
 * - a replacement that is a voting member stays, with its files: abort never removes a voter;
 * - an old member already out of the cluster leaves cluster.json (and its droplet, when this
 *   roll removed it);
 * - the cluster cannot be reached: nothing is removed from it; replacements that may be in it stay
 *   in cluster.json, and the message says so.
 * Each step is its own folder update; roll.json is cleared last (its history keeps every name
 * minted, so none is used again). Cut short, abort runs again from what is left.
 */
export async function abortReplacement(run: ReplaceRun, initial: RollState): Promise<AbortOutcome> {
  const undone: string[] = [];
  const left: string[] = [];
  let state = initial;
  const operation = initial.current!.operation;
  const aborted: RollState['history'][number][] = [];
  for (const original of initial.current!.steps) {
    const cluster = openCluster(run.folder);
    const client = { tls: cluster.adminTls, timeoutMs: run.timeoutMs };
    const machines = run.machines(cluster);
    const step = state.current!.steps.find((candidate) => candidate.old === original.old)!;
    const name = step.replacement.name;
    const finished = ACTION_ORDER[operation].every((action) => step.done.includes(action));
    if (finished) continue;
    const listed = await observedMembers(cluster, client, step);
    const recorded = cluster.record.members.some((member) => member.name === name);
    const minted = recorded || step.done.includes('add') || run.folder.exists(FOLDER_FILES.cert(name));
    if (minted) aborted.push({ old: step.old, replacement: name, operation, finishedAt: run.context.now().toISOString(), aborted: true });
    if (!listed) {
      if (recorded) left.push(`${name}: the cluster did not answer (${cluster.plan.members.map((member) => member.name).join(', ')}), so it may be a member: kept in cluster.json with its files; once the cluster answers, remove it with 'etcd-cloudinit remove-member --member ${name}' if it is not a voter you want`);
      else if (minted) {
        state = await forgetReplacement(run, state, step, 'aborted');
        undone.push(`${name}: never joined the cluster; deleted its files${machines.managed ? ' and droplet' : ''}`);
      }
      if (!step.done.includes('remove-old') && cluster.record.members.some((member) => member.name === step.old)) left.push(`${step.old}: kept in cluster.json (the cluster did not answer)`);
      continue;
    }
    const { endpoint, value: running } = listed;
    const peerUrl = recorded ? cluster.plan.members.find((member) => member.name === name)!.peerUrl : undefined;
    const member = running.find((candidate) => (step.memberId !== undefined && candidate.ID === step.memberId) || (peerUrl !== undefined && candidate.peerURLs?.includes(peerUrl)));
    if (member && !member.isLearner) {
      left.push(`${name}: a voting member (ID ${hexMemberId(member.ID)}): kept, with its files and cluster.json entry (abort never removes a voter; 'etcd-cloudinit remove-member --member ${name}' does)`);
    } else if (member) {
      await run.effects.memberRemove(endpoint, member.ID, client).catch((error: Error) => {
        throw new CliError('api', `member remove ${name} (ID ${hexMemberId(member.ID)}) on ${endpoint} failed: ${error.message}; run ${operation} --abort again`);
      });
      state = await forgetReplacement(run, state, step, 'aborted');
      undone.push(`${name}: removed the learner (ID ${hexMemberId(member.ID)}) from the cluster; deleted its files${machines.managed ? ' and droplet' : ''}`);
    } else if (minted || machines.holds(name)) {
      state = await forgetReplacement(run, state, step, 'aborted');
      undone.push(`${name}: not in the cluster; deleted its files${machines.managed ? ' and droplet' : ''}`);
    }
    const oldRecorded = openCluster(run.folder).record.members.some((candidate) => candidate.name === step.old);
    if (oldRecorded && !running.some((candidate) => candidate.peerURLs?.includes(step.oldPeerUrl))) {
      state = dropOld(run, state, step);
      const members = openCluster(run.folder).record.members.length;
      left.push(`${step.old}: no longer in the cluster (removed by hand?): dropped from cluster.json; the cluster has ${members} member(s) now${machines.holds(step.old) ? `; its droplet is kept: delete it, or add a member with add-member` : '; add a member with add-member to have as many as before'}`);
    } else if (!oldRecorded && machines.holds(step.old)) {
      undone.push(`${step.old}: out of the cluster already; ${await machines.retire(step.old, `Run ${operation} --abort again to finish.`)}`);
    }
  }
  run.effects.updateFolder({ files: [rollStateFile({ history: [...state.history, ...aborted] })] });
  return { undone, left };
}

/** The member records a roll's steps replace, for messages. */
export function describeStep(step: ReplacementStep): string {
  const address = step.replacement.ip ?? step.replacement.hostname;
  return `${step.old} -> ${step.replacement.name} (${address})`;
}

