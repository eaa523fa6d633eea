/**
 * `roll` and `repair`: replace members by new machines, one at a time, without SSH. They plan here
 * (validate -> plan the steps -> record them in roll.json) and run the steps in day2/replace.ts.
 */
import { FOLDER_FILES, recordKeyType, rollStateFile, type ClusterFolder, type MemberRecord, type ReplacementStep, type RollState, type RollTarget } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_BACKUP_TIMEOUT_SECONDS, DEFAULT_CATCH_UP_SECONDS, DEFAULT_POLL_SECONDS } from '../defaults.js';
import { realEffects, dryRunEffects } from '../day2/effects.js';
import { checkMembers, preflightHealth, SETTLE_MS, type SettleWait } from '../day2/health.js';
import type { Machines } from '../day2/machines.js';
import { machinesOf } from '../day2/provider.js';
import { MAX_MEMBERS, memberNameProblem, validateNewIp } from '../day2/membership.js';
import { usedMemberNames } from '../day2/names.js';
import { folderFromFlags, openCluster, parseTimeoutMs, type OpenCluster } from '../day2/open-cluster.js';
import { abortReplacement, ACTION_ORDER, describeStep, runReplacement, type AbortOutcome, type Operation, type ReplaceOutcome, type ReplaceRun } from '../day2/replace.js';
import { CliError, rollInProgressError, usageError } from '../errors.js';
import { SETTING_KEYS, clusterSchema, flagsToRawInput, memberHostname, withSettingChanges } from '../input.js';
import { listFlag, secondsFlagMs, stringFlag, type ParsedOptions } from '../options.js';
import { describeKeySpec, keySpecOf } from '../pki/key-types.js';
import { rollTargetOf } from '../record-codec.js';
import { jsonOutput, writeResult } from '../result.js';
import { parseEtcdVersion, upgradeRefusal } from '../versions.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function runRoll(flags: ParsedOptions, context: CommandContext): Promise<number> {
  return runOperation('roll', flags, context);
}

export function runRepair(flags: ParsedOptions, context: CommandContext): Promise<number> {
  return runOperation('repair', flags, context);
}

/** --catch-up-timeout and --poll-interval of roll and repair. */
export function replaceWaits(flags: ParsedOptions): { catchUpMs: number; pollMs: number } {
  return {
    catchUpMs: secondsFlagMs(flags, 'catch-up-timeout', DEFAULT_CATCH_UP_SECONDS, 7200, 'is not a number of seconds from 1 to 7200'),
    pollMs: secondsFlagMs(flags, 'poll-interval', DEFAULT_POLL_SECONDS, 60, 'is not a number of seconds up to 60'),
  };
}

/** Holds the folder's lock for the whole run: nothing else changes the cluster meanwhile. */
function runOperation(operation: Operation, flags: ParsedOptions, context: CommandContext): Promise<number> {
  const folder = folderFromFlags(flags, context);
  return folder.withLock(operation, context.now(), () => operate(operation, flags, context, folder));
}

async function operate(operation: Operation, flags: ParsedOptions, context: CommandContext, folder: ClusterFolder): Promise<number> {
  const dryRun = flags['dry-run'] === true;
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  if (flags.print === true && jsonOutput(context)) {
    throw usageError('validate', 'print: cannot be combined with --json (stdout carries the JSON document); the user-data is in the files the document names');
  }
  const cluster = openCluster(folder);
  const effects = dryRun ? dryRunEffects(folder, progress) : realEffects(folder);
  const machines = machinesOf(cluster, context, effects, flags);
  const run: ReplaceRun = {
    context,
    folder,
    effects,
    operation,
    timeoutMs: parseTimeoutMs(flags),
    ...replaceWaits(flags),
    // Each step opens the folder again: digitalocean.json changes as droplets come and go.
    machines: (opened) => machinesOf(opened, context, effects, flags),
    print: flags.print === true,
    sleep,
  };
  const existing = folder.readRollState();
  if (flags.abort === true) return abort(operation, flags, context, run, cluster, existing);
  let state: RollState;
  if (existing?.current) {
    state = resumable(operation, existing, flags, cluster);
    const pending = existing.current.steps.filter((step) => step.done.length < ACTION_ORDER[operation].length);
    const last = existing.current.renewCredentials?.done === false ? 'renewing the admin and client certificates' : 'checking the cluster version';
    progress(`resuming the ${operation} started ${existing.current.startedAt} (to ${existing.current.target.etcdVersion}): ${pending.map(describeStep).join(', ') || `every member replaced; ${last}`}`);
  } else {
    const plan = operation === 'roll' ? await planRoll(flags, context, cluster, run, machines) : await planRepair(flags, context, cluster, run, machines);
    state = {
      formatVersion: 1,
      current: { operation, startedAt: context.now().toISOString(), fromVersion: cluster.record.etcdVersion, target: plan.target, steps: plan.steps, ...(plan.renewCredentials ? { renewCredentials: { done: false } } : {}) },
      history: existing?.history ?? [],
    };
    if (dryRun) {
      await noteBackupInDryRun(flags, cluster, state, progress);
      writeResult(context, planDocument(operation, cluster, state), () => renderPlan(operation, cluster, state));
      return 0;
    }
    folder.update({ files: [rollStateFile(state)] });
    progress(`${operation} of cluster ${cluster.record.clusterName} to ${plan.target.etcdVersion}: ${plan.steps.map(describeStep).join(', ')}${plan.renewCredentials ? '; then the admin and client certificates' : ''}`);
  }
  if (dryRun) {
    await noteBackupInDryRun(flags, cluster, state, progress);
    // A dry run of a roll in progress shows what the re-run would still do.
    writeResult(context, planDocument(operation, cluster, state), () => renderPlan(operation, cluster, state));
    return 0;
  }
  state = await backupBeforeFirstReplacement(flags, context, run, cluster, state);
  const outcome = await runReplacement(run, state);
  if (run.print) context.stderr.write(renderOutcome(operation, cluster, outcome));
  else writeResult(context, outcomeDocument(operation, cluster, outcome), () => renderOutcome(operation, cluster, outcome));
  return 0;
}

/** A dry run says on stderr that a run would take the backup first, and where it would go. */
async function noteBackupInDryRun(flags: ParsedOptions, cluster: OpenCluster, state: RollState, progress: (line: string) => void): Promise<void> {
  const current = state.current!;
  if (current.backup || flags['no-backup'] === true || current.steps.some((step) => step.done.includes('add'))) return;
  const { backupDestination } = await import('../backup/take.js');
  progress(`[dry-run] before the first replacement: a snapshot from a healthy member into ${backupDestination(cluster)} (--no-backup skips it)`);
}

/**
 * A snapshot before the first replacement (create-backup's takeBackup): to the cluster's bucket,
 * or into the folder's backups/ on a cluster without one. Taken once per roll or repair: roll.json
 * records it (or that --no-backup skipped it), so a resumed run does not take a second; a run
 * interrupted before it had added any replacement takes it then. A repair takes one too: the
 * cluster keeps quorum without the dead member, and a snapshot first costs seconds.
 */
async function backupBeforeFirstReplacement(flags: ParsedOptions, context: CommandContext, run: ReplaceRun, cluster: OpenCluster, state: RollState): Promise<RollState> {
  const current = state.current!;
  if (current.backup) {
    if ('location' in current.backup) run.context.stderr.write(`pre-${current.operation} backup: taken already at ${current.backup.takenAt}: ${current.backup.location}\n`);
    return state;
  }
  if (current.steps.some((step) => step.done.includes('add'))) return state;
  let backup: NonNullable<NonNullable<RollState['current']>['backup']>;
  if (flags['no-backup'] === true) {
    context.stderr.write(`pre-${current.operation} backup: skipped (--no-backup)\n`);
    backup = { skipped: true };
  } else {
    const { takeBackup, describeBackup, backupLocation } = await import('../backup/take.js');
    const progress = (line: string) => void context.stderr.write(`${line}\n`);
    const taken = await takeBackup(cluster, {
      client: { tls: cluster.adminTls, timeoutMs: run.timeoutMs },
      streamTimeoutMs: Math.max(run.timeoutMs, DEFAULT_BACKUP_TIMEOUT_SECONDS * 1000),
      env: context.env,
      now: context.now,
      progress,
    });
    const location = backupLocation(taken);
    context.stderr.write(`pre-${current.operation} backup: ${describeBackup(taken)}\n`);
    backup = { takenAt: context.now().toISOString(), location };
  }
  const next: RollState = { ...state, current: { ...current, backup } };
  run.folder.update({ files: [rollStateFile(next)] });
  return next;
}

/** The flags --abort takes besides the folder's and --timeout, --json: none that define or run a roll. */
const NOT_WITH_ABORT = ['dry-run', 'no-backup', 'print', 'catch-up-timeout', 'poll-interval', 'wait-timeout', 'etcd-version', 'release-url', 'install', 'etcd-sha256', 'key-type', 'key-size', 'image', 'size', 'member', 'ips', 'hostnames', 'ip', 'hostname'] as const;

/** `--abort`: undo the roll or repair in progress as far as it can be undone (day2/replace.ts), and say what was left. */
async function abort(operation: Operation, flags: ParsedOptions, context: CommandContext, run: ReplaceRun, cluster: OpenCluster, existing: RollState | undefined): Promise<number> {
  const other = NOT_WITH_ABORT.find((flag) => flags[flag] !== undefined && flags[flag] !== false);
  if (other) throw usageError('validate', `${other}: cannot be combined with --abort, which undoes the ${operation} in progress as roll.json records it`);
  const current = existing?.current;
  if (!current) {
    const outcome: AbortOutcome = { undone: [], left: [] };
    writeResult(context, abortDocument(operation, cluster, outcome, false), () => `No roll or repair of cluster ${cluster.record.clusterName} is in progress: nothing to abort.\n`);
    return 0;
  }
  if (current.operation !== operation) {
    throw new CliError('preflight', `a ${current.operation} of cluster ${cluster.record.clusterName} is in progress (started ${current.startedAt}), not a ${operation}; undo it with '${current.operation} --abort'`);
  }
  run.context.stderr.write(`aborting the ${operation} started ${current.startedAt}: ${current.steps.map(describeStep).join(', ')}\n`);
  const outcome = await abortReplacement(run, existing);
  writeResult(context, abortDocument(operation, cluster, outcome, true), () =>
    [
      `Aborted the ${operation} of cluster ${cluster.record.clusterName}; ${cluster.folder.shownFile(FOLDER_FILES.rollJson)} has no ${operation} in progress now.`,
      ...(outcome.undone.length > 0 ? ['Undone:', ...outcome.undone.map((line) => `  ${line}`)] : ['Nothing to undo.']),
      ...(outcome.left.length > 0 ? ['Left as it is:', ...outcome.left.map((line) => `  ${line}`)] : []),
      '',
    ].join('\n'),
  );
  return 0;
}

/** roll/repair --abort --json (schema/output/roll.schema.json). */
const abortDocument = (operation: Operation, cluster: OpenCluster, outcome: AbortOutcome, aborted: boolean) => ({
  dryRun: false,
  operation,
  clusterName: cluster.record.clusterName,
  aborted,
  undone: [...outcome.undone],
  left: [...outcome.left],
});

const stepDocument = (operation: Operation, step: ReplacementStep) => ({
  old: step.old,
  replacement: { name: step.replacement.name, host: step.replacement.ip ?? step.replacement.hostname ?? '' },
  done: [...step.done],
  pending: ACTION_ORDER[operation].filter((action) => !step.done.includes(action)),
});

/** roll/repair --dry-run --json (schema/output/roll.schema.json): what a run would do. */
function planDocument(operation: Operation, cluster: OpenCluster, state: RollState): object {
  const current = state.current!;
  return {
    dryRun: true,
    operation,
    clusterName: cluster.record.clusterName,
    fromVersion: current.fromVersion,
    target: { etcdVersion: current.target.etcdVersion, keySize: current.target.keySize, ...(current.target.droplet ? { droplet: { size: current.target.droplet.size, image: current.target.droplet.image } } : {}) },
    steps: current.steps.map((step) => stepDocument(operation, step)),
    renewCredentials: current.renewCredentials ? { done: current.renewCredentials.done, certificates: credentialFiles(cluster), kubernetes: cluster.plan.kubernetes ? cluster.folder.shownFile(FOLDER_FILES.kubernetesDir) : null } : null,
  };
}

/** The files the roll's last step re-issues: the admin certificate and every client certificate. */
function credentialFiles(cluster: OpenCluster): string[] {
  return ['admin', ...cluster.plan.clients.map((client) => `clients/${client.name}`)].map((fileBase) => cluster.folder.shownFile(FOLDER_FILES.cert(fileBase)));
}

/** roll/repair --json: what was replaced, and the versions the cluster runs now. */
function outcomeDocument(operation: Operation, cluster: OpenCluster, outcome: ReplaceOutcome): object {
  return {
    dryRun: false,
    operation,
    clusterName: cluster.record.clusterName,
    steps: outcome.steps.map((step) => stepDocument(operation, step)),
    memberVersions: Object.fromEntries(outcome.memberVersions),
    clusterVersion: outcome.clusterVersion,
    retiredMachines: [...outcome.retiredMachines],
    renewedCredentials: outcome.renewedCredentials ? { ...outcome.renewedCredentials, kubernetes: outcome.renewedCredentials.kubernetes ?? null } : null,
  };
}

/** The flags that define a roll: on a re-run they may only repeat what roll.json recorded. */
const DEFINING_FLAGS = ['etcd-version', 'release-url', 'install', 'etcd-sha256', 'key-type', 'key-size', 'image', 'size', 'member', 'ips', 'hostnames', 'ip', 'hostname'] as const;

function resumable(operation: Operation, state: RollState, flags: ParsedOptions, cluster: OpenCluster): RollState {
  const current = state.current!;
  if (current.operation !== operation) {
    throw rollInProgressError(cluster.record.clusterName, current, `run '${current.operation}' again to finish it before ${operation}`);
  }
  const recorded: Record<string, string | undefined> = {
    'etcd-version': current.target.etcdVersion,
    'key-type': recordKeyType(current.target),
    'key-size': recordKeyType(current.target) === 'rsa' ? String(current.target.keySize) : undefined,
    install: current.target.install.mode ?? 'download',
    'release-url': current.target.install.mode === 'baked' ? undefined : current.target.install.releaseUrl,
    'etcd-sha256': current.target.install.mode === 'baked' ? undefined : current.target.install.sha256,
    image: current.target.droplet ? String(current.target.droplet.image) : undefined,
    size: current.target.droplet?.size,
    member: current.steps.map((step) => step.old).join(','),
    ips: current.steps.map((step) => step.replacement.ip).join(','),
    ip: current.steps.map((step) => step.replacement.ip).join(','),
    hostnames: current.steps.map((step) => step.replacement.hostname).join(','),
    hostname: current.steps.map((step) => step.replacement.hostname).join(','),
  };
  // Lists compare as sets: a roll replaces the leader last, so roll.json's order may not be the order given.
  const LISTS: readonly string[] = ['member', 'ips', 'hostnames'];
  const canonical = (flag: string, value: string | undefined) => (value !== undefined && LISTS.includes(flag) ? [...new Set(value.split(','))].sort().join(',') : value);
  for (const flag of DEFINING_FLAGS) {
    const given = LISTS.includes(flag) ? listFlag(flags, flag).join(',') || undefined : stringFlag(flags, flag);
    if (given !== undefined && canonical(flag, given) !== canonical(flag, recorded[flag])) {
      throw usageError(
        'validate',
        `${flag}: ${JSON.stringify(given)} differs from the ${operation} in progress (${recorded[flag] === undefined ? 'not set' : JSON.stringify(recorded[flag])}, started ${current.startedAt}); run '${operation}' without it to resume`,
      );
    }
  }
  // --member with --ips (--hostnames): each pair as recorded.
  const members = listFlag(flags, 'member');
  for (const flag of ['ips', 'hostnames'] as const) {
    const addresses = listFlag(flags, flag);
    if (members.length === 0 || addresses.length !== members.length) continue;
    members.forEach((old, index) => {
      const step = current.steps.find((candidate) => candidate.old === old);
      const recordedAddress = flag === 'ips' ? step?.replacement.ip : step?.replacement.hostname;
      if (recordedAddress !== addresses[index]) {
        throw usageError('validate', `${flag}[${index}]: ${JSON.stringify(addresses[index])} for ${old} differs from the ${operation} in progress (${JSON.stringify(recordedAddress)}, started ${current.startedAt}); run '${operation}' without it to resume`);
      }
    });
  }
  return state;
}

/** What the replacements get: the cluster's input with the flags' changes, checked as gen-userdata checks them, and by etcd's upgrade rules. */
function targetFromFlags(flags: ParsedOptions, cluster: OpenCluster, machines: Machines): RollTarget {
  const { record, input } = cluster;
  const changes = flagsToRawInput(Object.fromEntries(SETTING_KEYS.filter((key) => flags[key] !== undefined).map((key) => [key, flags[key]])));
  const versionChanges = changes['etcd-version'] !== undefined && changes['etcd-version'] !== record.etcdVersion;
  if (versionChanges && input.etcdSha256 !== undefined && changes['etcd-sha256'] === undefined && changes.install !== 'baked') {
    throw usageError('validate', `etcd-sha256: cluster ${record.clusterName} pins the ${record.etcdVersion} tarball's SHA-256; give --etcd-sha256 of the ${String(changes['etcd-version'])} tarball too`);
  }
  const target = withSettingChanges(input, changes);
  const refusal = upgradeRefusal(parseEtcdVersion(record.etcdVersion)!, parseEtcdVersion(target.etcdVersion)!);
  if (refusal) throw usageError('validate', `etcd-version: ${refusal}`);
  return { ...rollTargetOf(target), ...machines.replacementSettings(flags) };
}

/** Every name this cluster has used: current members, members that left, droplets, every replacement (day2/names.ts). */
function usedNames(cluster: OpenCluster, machines: Machines): Set<string> {
  return new Set(usedMemberNames(cluster, machines.heldNames).keys());
}

/** `etcd1` -> `etcd1-2` -> `etcd1-3`: a replacement's name says whom it replaced, and is never one used before. */
export function replacementName(old: string, taken: Set<string>): string {
  const base = old.replace(/-\d+$/, '');
  for (let generation = 2; ; generation += 1) {
    const name = `${base}-${generation}`;
    if (!taken.has(name)) {
      taken.add(name);
      return name;
    }
  }
}

const hostnameRule = (clusterSchema as { definitions: Record<'hostname', { pattern: string; errorMessage: string }> }).definitions.hostname;
const HOSTNAME = new RegExp(hostnameRule.pattern);

/** The replacement of each old member: its name, and its address in the cluster's own mode. */
function replacements(flags: ParsedOptions, cluster: OpenCluster, machines: Machines, olds: readonly string[], addressFlags: { ip: string; hostname: string }): MemberRecord[] {
  const { record } = cluster;
  const taken = usedNames(cluster, machines);
  const byName = record.members.every((member) => member.hostname !== undefined);
  const domain = machines.domain ?? record.domain;
  const names = olds.map((old) => replacementName(old, taken));
  for (const name of names) {
    const problem = memberNameProblem(name);
    if (problem) throw usageError('validate', `member: replacement name ${JSON.stringify(name)} ${problem}`);
    machines.checkName(name, 'member', "the replacement's ");
  }
  if (!byName) {
    if (listFlag(flags, addressFlags.hostname).length > 0) throw usageError('validate', `${addressFlags.hostname}: the members of cluster ${record.clusterName} are addressed by IPv4; give --${addressFlags.ip}`);
    const ips = listFlag(flags, addressFlags.ip);
    if (ips.length !== olds.length) {
      throw usageError('validate', `${addressFlags.ip}: give the new machine's IPv4 for each replaced member (${olds.join(', ')}): ${olds.length} address(es), got ${ips.length}`);
    }
    ips.forEach((ip, index) => {
      const field = addressFlags.ip === 'ip' ? 'ip' : `ips[${index}]`;
      validateNewIp(ip, record, field, '; a replacement is a new machine');
      if (ips.indexOf(ip) !== index) throw usageError('validate', `${field}: ${JSON.stringify(ip)} is given twice`);
    });
    return names.map((name, index) => ({ name, ip: ips[index]! }));
  }
  if (listFlag(flags, addressFlags.ip).length > 0) throw usageError('validate', `${addressFlags.ip}: the members of cluster ${record.clusterName} are named by DNS; ${domain ? 'their replacements are named <cluster-name>-<name>.' + domain : `give --${addressFlags.hostname}`}`);
  if (domain !== undefined) {
    if (listFlag(flags, addressFlags.hostname).length > 0) throw usageError('validate', `${addressFlags.hostname}: cluster ${record.clusterName} derives its names as <cluster-name>-<member>.${domain}; do not give --${addressFlags.hostname}`);
    return names.map((name) => ({ name, hostname: memberHostname(record.clusterName, name, domain) }));
  }
  const hostnames = listFlag(flags, addressFlags.hostname);
  if (hostnames.length !== olds.length) {
    throw usageError('validate', `${addressFlags.hostname}: give the new machine's DNS name for each replaced member (${olds.join(', ')}): ${olds.length} name(s), got ${hostnames.length}`);
  }
  // Checked as add-member checks --hostname: a DNS name, no member's, and (here) not given twice.
  hostnames.forEach((hostname, index) => {
    const field = addressFlags.hostname === 'hostname' ? 'hostname' : `hostnames[${index}]`;
    if (!HOSTNAME.test(hostname)) throw usageError('validate', `${field}: ${JSON.stringify(hostname)} ${hostnameRule.errorMessage}`);
    if (hostnames.indexOf(hostname) !== index) throw usageError('validate', `${field}: ${JSON.stringify(hostname)} is given twice`);
    const owner = record.members.find((member) => member.hostname === hostname);
    if (owner) throw usageError('validate', `${field}: ${JSON.stringify(hostname)} is already used by member ${owner.name}; a replacement is a new machine with a new name`);
  });
  return names.map((name, index) => ({ name, hostname: hostnames[index]! }));
}

interface OperationPlan {
  readonly target: RollTarget;
  readonly steps: readonly ReplacementStep[];
  /** The last step: the admin and client certificates re-issued (a roll of every member only). */
  readonly renewCredentials?: boolean;
}

/** A preflight waits out a busy cluster's hiccup as the steps do, polling as often. */
const preflightWait = (run: ReplaceRun, ignore?: string): SettleWait => ({ settleMs: SETTLE_MS, pollMs: run.pollMs, sleep: run.sleep, progress: (line) => void run.context.stderr.write(`${line}\n`), ignore });

/** roll: every member (or --member), healthy cluster, no learner; the leader last, so leadership moves once. */
async function planRoll(flags: ParsedOptions, context: CommandContext, cluster: OpenCluster, run: ReplaceRun, machines: Machines): Promise<OperationPlan> {
  const target = targetFromFlags(flags, cluster, machines);
  const names = cluster.plan.members.map((member) => member.name);
  const chosen = listFlag(flags, 'member');
  chosen.forEach((name, index) => {
    if (!names.includes(name)) throw usageError('validate', `member: ${JSON.stringify(name)} is not a member (members: ${names.join(', ')})`);
    if (chosen.indexOf(name) !== index) throw usageError('validate', `member: ${JSON.stringify(name)} is given twice`);
  });
  if (cluster.plan.members.length + 1 > MAX_MEMBERS) throw usageError('validate', `member: a roll adds one member at a time; cluster ${cluster.record.clusterName} has ${MAX_MEMBERS} already`);
  // Everything offline first: the replacements' names and addresses, in the order the user gave them.
  // --ips and --hostnames pair with the members in the --member order (cluster.json's without it).
  const olds = chosen.length > 0 ? chosen : names;
  if (olds.length < names.length && target.etcdVersion !== cluster.record.etcdVersion) {
    // The cluster version moves only once every member runs the new release, and cluster.json keeps one release for all members: a partial roll could never finish.
    throw usageError(
      'validate',
      `etcd-version: ${target.etcdVersion} with --member ${olds.join(',')}: a roll of some members keeps the cluster's release (${cluster.record.etcdVersion}), since the cluster version moves only when every member runs the new one; roll every member (without --member) to change the release`,
    );
  }
  const news = replacements(flags, cluster, machines, olds, { ip: 'ips', hostname: 'hostnames' });
  const client = { tls: cluster.adminTls, timeoutMs: parseTimeoutMs(flags) };
  const health = await preflightHealth(() => checkMembers(cluster.plan, client, context.now()), 'the roll', preflightWait(run), run.effects.dryRun, "the members' health, that none is a learner, or which one leads (it is replaced last)") ?? [];
  const unhealthy = health.filter((member) => !member.healthy);
  if (unhealthy.length > 0) {
    throw new CliError('preflight', `refusing to roll an unhealthy cluster: ${unhealthy.map((member) => `${member.name} (${member.error})`).join('; ')}; replace a dead member with 'etcd-cloudinit repair --member <name>' first`);
  }
  const learner = health.find((member) => member.learner);
  if (learner) throw new CliError('preflight', `${learner.name} is still a learner; wait until it has promoted itself, then roll`);
  const leader = health.find((member) => member.leader)?.name;
  const steps = olds.map((old, index): ReplacementStep => ({ old, oldPeerUrl: cluster.plan.members.find((member) => member.name === old)!.peerUrl, replacement: news[index]!, done: [] }));
  // The leader last: leadership then moves once, to a member that stays.
  const sorted = steps.sort((a, b) => Number(a.old === leader) - Number(b.old === leader));
  // Only a roll of every member renews the admin and client pairs: a --member roll replaces suspect machines, and kube-apiserver's pair should not need copying again for it.
  return { target, steps: sorted, renewCredentials: olds.length === names.length };
}

/** repair: the named member is dead, and the others keep quorum without it. */
async function planRepair(flags: ParsedOptions, context: CommandContext, cluster: OpenCluster, run: ReplaceRun, machines: Machines): Promise<OperationPlan> {
  const name = stringFlag(flags, 'member');
  const names = cluster.plan.members.map((member) => member.name);
  if (name === undefined) throw usageError('validate', 'member: is required: the dead member to replace (for example --member etcd2)');
  const dead = cluster.plan.members.find((member) => member.name === name);
  if (!dead) throw usageError('validate', `member: ${JSON.stringify(name)} is not a member (members: ${names.join(', ')})`);
  const { record } = cluster;
  const target: RollTarget = { etcdVersion: record.etcdVersion, install: record.install, keyType: recordKeyType(record), keySize: record.keySize, ...machines.replacementSettings(flags) };
  const [replacement] = replacements(flags, cluster, machines, [name], { ip: 'ip', hostname: 'hostname' });
  const client = { tls: cluster.adminTls, timeoutMs: parseTimeoutMs(flags) };
  const health = await preflightHealth(() => checkMembers(cluster.plan, client, context.now()), `repairing ${name}`, preflightWait(run, name), run.effects.dryRun, `that ${name} is dead or that the others keep quorum without it`);
  if (health === undefined) return { target, steps: [{ old: name, oldPeerUrl: dead.peerUrl, replacement: replacement!, done: [] }] };
  if (health.find((member) => member.name === name)!.healthy) {
    throw usageError('preflight', `member: ${name} is healthy; repair replaces a dead member. Replace a live one with 'etcd-cloudinit roll --member ${name}'`);
  }
  const others = health.filter((member) => member.name !== name);
  const healthyOthers = others.filter((member) => member.healthy && !member.learner);
  const quorumAfter = Math.floor(others.length / 2) + 1;
  if (healthyOthers.length < quorumAfter) {
    throw new CliError(
      'preflight',
      `refusing to remove ${name}: only ${healthyOthers.length} other member(s) are healthy voters (${others.filter((member) => !member.healthy).map((member) => member.name).join(', ') || 'none'} unhealthy), and ${others.length} members need ${quorumAfter} for quorum; bring them back first`,
    );
  }
  // No renewCredentials: a repair keeps the cluster's settings and replaces one dead machine, which held no admin or client key.
  return { target, steps: [{ old: name, oldPeerUrl: dead.peerUrl, replacement: replacement!, done: [] }] };
}

function renderPlan(operation: Operation, cluster: OpenCluster, state: RollState): string {
  const current = state.current!;
  const lines = [
    `Dry run: ${operation} of cluster ${cluster.record.clusterName} from ${current.fromVersion} to ${current.target.etcdVersion}, keys ${describeKeySpec(keySpecOf({ keyType: recordKeyType(current.target), keySize: current.target.keySize }))}${current.target.droplet ? `, droplets ${current.target.droplet.size} / ${current.target.droplet.image}` : ''}; nothing was changed or written.`,
    ...current.steps.map((step) => `  ${describeStep(step)}: ${ACTION_ORDER[operation].filter((action) => !step.done.includes(action)).join(' -> ') || 'done'}`),
    ...(current.renewCredentials
      ? [`  then${current.renewCredentials.done ? ' (done)' : ''}: renew-credentials: ${credentialFiles(cluster).join(', ')} re-issued by the same CA with new keys${cluster.plan.kubernetes ? `; ${cluster.folder.shownFile(FOLDER_FILES.kubernetesDir)}/ rewritten` : ''}`]
      : operation === 'roll'
        ? ['  The admin and client certificates are kept: this roll does not replace every member, or an older release started it (renew-certs --rotate-keys renews them after it).']
        : []),
    '',
  ];
  return lines.join('\n');
}

function renderOutcome(operation: Operation, cluster: OpenCluster, outcome: ReplaceOutcome): string {
  const verb = operation === 'roll' ? 'Rolled' : 'Repaired';
  return [
    `${verb} cluster ${cluster.record.clusterName}: ${outcome.steps.map(describeStep).join(', ')}.`,
    ...[...outcome.memberVersions].map(([name, version]) => `  ${name.padEnd(10)}etcd ${version}`),
    `Cluster version: ${outcome.clusterVersion}`,
    ...outcome.retiredMachines.map((line) => `  ${line}`),
    `Updated ${cluster.folder.shownFile('cluster.json')}; every replacement has a freshly minted certificate.`,
    ...renewedLines(outcome.renewedCredentials),
    '',
  ].join('\n');
}

function renewedLines(renewed: ReplaceOutcome['renewedCredentials']): string[] {
  if (!renewed) return [];
  return [
    `Renewed the admin certificate${renewed.clients.length > 0 ? ` and ${renewed.clients.length} client certificate(s)` : ''} with the same CA (new ${renewed.keys} keys):`,
    `  ${'admin'.padEnd(8)}${renewed.admin.certificate} until ${renewed.admin.notAfter.slice(0, 10)} (used from the folder, etcdctl.env too: nothing to install)`,
    ...renewed.clients.map((client) => `  ${'client'.padEnd(8)}${client.certificate} until ${client.notAfter.slice(0, 10)} (CN=${client.name}; copy it to the application that uses it again)`),
    ...(renewed.kubernetes ? [`  ${renewed.kubernetes}/ has the new kube-apiserver pair: copy it to every control-plane node again (see its README.txt); the old pair keeps working until it expires`] : []),
  ];
}
