import { FOLDER_FILES } from '../cluster-folder.js';
import { mintSources, type CommandContext } from '../context.js';
import { dryRunEffects, realEffects, type Day2Effects } from '../day2/effects.js';
import { checkMembers, preflightHealth, SETTLE_MS } from '../day2/health.js';
import { DEFAULT_POLL_SECONDS } from '../defaults.js';
import { machinesOf } from '../day2/provider.js';
import { addWithRetry, membershipDrift, validateNewMember, withJoiningMember } from '../day2/membership.js';
import { usedMemberNames } from '../day2/names.js';
import { folderFromFlags, openCluster, refuseDuringReplacement, parseTimeoutMs, planOf, type OpenCluster } from '../day2/open-cluster.js';
import { CliError } from '../errors.js';
import { hexMemberId, memberList, type ClientOptions, type EtcdMember } from '../etcd/client.js';
import { isPrivateOrLoopback } from '../ipv4.js';
import type { ParsedOptions } from '../options.js';
import { certificateFiles, recordFiles, userDataFile } from '../output.js';
import { issueLeaf, readClusterPki, type ClusterPki, type IssuedCert, type KeyPairPem } from '../pki/mint.js';
import type { ClusterPlan, MemberPlan } from '../plan.js';
import { withMembers } from '../record-codec.js';
import { renderUserData } from '../render.js';
import { writeResult } from '../result.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The running cluster as the preflight found it. */
interface Preflight {
  /** A healthy member to send the change to. */
  readonly endpoint: string;
  /** The new member is already in the cluster, unstarted (an earlier add-member that failed to write): do not add it twice. */
  readonly alreadyAdded: EtcdMember | undefined;
}

/** preflight: every member healthy (a busy cluster's hiccup waited out), and the cluster's membership is what cluster.json says. */
async function preflight(plan: ClusterPlan, joining: MemberPlan, client: ClientOptions, context: CommandContext, dryRun: boolean): Promise<Preflight> {
  const wait = { settleMs: SETTLE_MS, pollMs: DEFAULT_POLL_SECONDS * 1000, sleep, progress: (line: string) => void context.stderr.write(`${line}\n`) };
  const checks = "the members' health, the running member list against cluster.json, or that no learner is still catching up";
  const health = await preflightHealth(() => checkMembers(plan, client, context.now()), `adding ${joining.name}`, wait, dryRun, checks);
  // A dry run whose cluster did not answer: the plan is printed against the first member.
  if (health === undefined) return { endpoint: plan.members[0]!.clientUrl, alreadyAdded: undefined };
  const unhealthy = health.filter((member) => !member.healthy);
  if (unhealthy.length > 0) {
    throw new CliError(
      'preflight',
      `refusing to add a member to an unhealthy cluster: ${unhealthy.map((member) => `${member.name} (${member.error})`).join('; ')}; fix or remove-member it first (see 'etcd-cloudinit health')`,
    );
  }
  const endpoint = (health.find((member) => member.leader) ?? health[0]!).endpoint;
  const running = await memberList(endpoint, client).catch((error: Error) => {
    throw new CliError('preflight', `member list on ${endpoint} failed: ${error.message}`);
  });
  const existing = running.find((member) => member.peerURLs?.includes(joining.peerUrl));
  const learner = running.find((member) => member.isLearner && member !== existing);
  if (learner) {
    throw new CliError(
      'preflight',
      `${learner.name || 'an unstarted member'} (ID ${hexMemberId(learner.ID)}) is still a learner; wait until it has promoted itself ('etcd-cloudinit health' lists it as a learner until then), then add the next member`,
    );
  }
  if (existing?.name) {
    const field = joining.ip !== undefined ? 'ip' : 'hostname';
    throw new CliError('preflight', `${field}: ${JSON.stringify(joining.host)} is already the peer URL of running member ${existing.name} (ID ${hexMemberId(existing.ID)}), which cluster.json does not list`);
  }
  const drift = membershipDrift(plan.members, existing ? running.filter((member) => member !== existing) : running);
  if (drift.length > 0) {
    throw new CliError('preflight', `cluster.json and the running cluster disagree: ${drift.join('; ')}; reconcile them (etcdctl member list/remove) before adding a member`);
  }
  return { endpoint, alreadyAdded: existing };
}

/** Holds the folder's lock from the first read to the last write. */
export function runAddMember(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const folder = folderFromFlags(flags, context);
  const now = context.now();
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const effects = flags['dry-run'] === true ? dryRunEffects(folder, progress) : realEffects(folder);
  return folder.withLock('add-member', now, () => {
    refuseDuringReplacement(folder, 'add-member');
    return addMember(flags, context, openCluster(folder), effects, now);
  });
}

/**
 * validate -> plan -> preflight (health, membership, no learner) -> mint -> render -> member add (as a
 * learner unless --voter) -> render with its ID -> write -> (create-droplets clusters) droplet, wait
 * for its address, A record. The member is added before its droplet exists: a learner has no vote,
 * and its user-data, fixed when the droplet is created, must carry the member ID it promotes.
 */
async function addMember(flags: ParsedOptions, context: CommandContext, cluster: OpenCluster, effects: Day2Effects, now: Date): Promise<number> {
  const timeoutMs = parseTimeoutMs(flags);
  const machines = machinesOf(cluster, context, effects, flags);
  const resumed = machines.unfinished(flags.name);
  if (resumed) {
    context.stderr.write(`${resumed}: add-member did not finish its droplet; resuming it\n`);
    const member = cluster.plan.members.find((candidate) => candidate.name === resumed)!;
    const provisioned = (await machines.provision(member, () => cluster.folder.readUserData(resumed), undefined))!;
    const document = {
      dryRun: effects.dryRun,
      clusterName: cluster.plan.clusterName,
      resumed: true,
      added: { name: member.name, host: member.host, clientUrl: member.clientUrl, peerUrl: member.peerUrl, userData: cluster.folder.shownFile(FOLDER_FILES.userData(member.name)) },
      members: cluster.plan.members.map((candidate) => candidate.name),
      droplet: provisioned,
    };
    writeResult(context, document, () => `Finished adding member ${resumed} (${member.host}): ${provisioned}\n`);
    return 0;
  }

  const newMember = validateNewMember(flags, cluster.record, machines, usedMemberNames(cluster, machines.heldNames));
  if (newMember.ip !== undefined && !isPrivateOrLoopback(newMember.ip)) {
    context.stderr.write(`warning: ip: ${JSON.stringify(newMember.ip)} is a public address; etcd will listen on it, so firewall ports 2379-2380 to the cluster's own addresses\n`);
  }
  const learner = flags.voter !== true;
  const basePlan = planOf(cluster, withMembers(cluster.input, [...cluster.record.members, newMember]));
  // The learner's member ID is known only after member add: until then, the longest one stands in.
  const plan = withJoiningMember(basePlan, newMember.name, learner ? 'f'.repeat(16) : undefined);
  const joining = plan.members.find((member) => member.name === newMember.name)!;
  const client = { tls: cluster.adminTls, timeoutMs };

  const { endpoint, alreadyAdded } = await preflight(cluster.plan, joining, client, context, effects.dryRun);

  // Everything that can fail offline happens before the cluster changes.
  const current = readClusterPki(cluster.plan, cluster.pki);
  const ca: KeyPairPem = { certPem: current.ca.certPem, keyPem: current.ca.keyPem };
  const cert = await issueLeaf(plan, newMember.name, ca, {
    now,
    ...mintSources(context),
  });
  const pki: ClusterPki = {
    ...current,
    members: new Map([...current.members, [newMember.name, cert]]),
    all: [...current.all, cert],
  };
  renderUserData(plan, pki, newMember.name); // render and check now: nothing has changed in the cluster yet

  let memberId = alreadyAdded?.ID;
  const joinedAsLearner = alreadyAdded ? alreadyAdded.isLearner === true : learner;
  if (!memberId) {
    const added = await addWithRetry(effects, endpoint, joining.peerUrl, client, learner);
    memberId = added.member?.ID ?? '0';
  }
  const finalPlan = withJoiningMember(basePlan, newMember.name, joinedAsLearner ? hexMemberId(memberId) : undefined);
  const joined = finalPlan.members.find((member) => member.name === newMember.name)!;
  const userData = renderUserData(finalPlan, pki, newMember.name);

  try {
    effects.updateFolder({ files: [...certificateFiles(cert), userDataFile(newMember.name, userData), ...recordFiles(finalPlan, pki, now)] });
  } catch (error) {
    throw new CliError(
      'write',
      `${(error as Error).message.replace(/^\[write\] /, '')}; the cluster already lists ${joining.name} as an unstarted member: run add-member with the same ${joining.ip !== undefined ? '--ip' : '--hostname'} and --name again to write its files`,
    );
  }
  const machine = await machines.provision(joined, () => userData, undefined);
  const document = {
    dryRun: effects.dryRun,
    clusterName: finalPlan.clusterName,
    resumed: alreadyAdded !== undefined,
    added: {
      name: joined.name,
      host: joined.host,
      id: hexMemberId(memberId),
      learner: joined.learnerId !== undefined,
      clientUrl: joined.clientUrl,
      peerUrl: joined.peerUrl,
      certificate: { file: cluster.folder.shownFile(FOLDER_FILES.cert(joined.name)), notAfter: cert.notAfter },
      userData: cluster.folder.shownFile(FOLDER_FILES.userData(joined.name)),
    },
    members: finalPlan.members.map((member) => member.name),
    droplet: machine ?? null,
  };
  writeResult(context, document, () => summary(cluster, finalPlan, joined, cert, memberId, alreadyAdded !== undefined, machine, effects.dryRun));
  return 0;
}

function summary(
  cluster: OpenCluster,
  plan: ClusterPlan,
  joining: MemberPlan,
  cert: IssuedCert,
  memberId: string,
  resumed: boolean,
  machine: string | undefined,
  dryRun: boolean,
): string {
  const { folder } = cluster;
  const userData = folder.shownFile(FOLDER_FILES.userData(joining.name));
  const count = plan.members.length;
  const role = joining.learnerId !== undefined ? ' as a learner' : '';
  if (dryRun) return `Dry run: would add member ${joining.name} (${joining.host})${role} to cluster ${plan.clusterName}; nothing was changed or written.\n`;
  const boot = machine ? `Its droplet boots from ${userData} (${machine})` : `Next: boot the new machine with ${userData}`;
  const next =
    joining.learnerId !== undefined
      ? [
          `${boot}. As a learner it gets the data but no vote,`,
          `so quorum stays ${Math.floor((count - 1) / 2) + 1} of ${count - 1} meanwhile; once it has caught up, the node promotes itself (etcd-promote.service).`,
        ]
      : [
          `${boot}${machine ? ';' : ' now:'} the cluster counts it towards quorum`,
          `(${Math.floor(count / 2) + 1} of ${count}) from this moment, so it tolerates one fewer failure until the member has started.`,
        ];
  return [
    `${resumed ? 'Member was already added (unstarted); wrote its files' : 'Added member'} ${joining.name} (${joining.host}, ID ${hexMemberId(memberId)})${role} to cluster ${plan.clusterName}: now ${count} members.`,
    `  ${joining.name.padEnd(8)}minted ${FOLDER_FILES.cert(joining.name)} (expires ${cert.notAfter.slice(0, 10)})  ${FOLDER_FILES.userData(joining.name)} (initial-cluster-state: existing)`,
    `Updated ${folder.shownFile(FOLDER_FILES.clusterJson)} and ${FOLDER_FILES.etcdctlEnv}.`,
    '',
    ...next,
    `Then check: etcd-cloudinit health${plan.clusterName === 'etcd' ? '' : ` --cluster-name ${plan.clusterName}`}`,
    ...(count % 2 === 0 ? [`Note: ${count} members tolerate no more failures than ${count - 1}; add or remove one more member.`] : []),
    '',
  ].join('\n');
}
