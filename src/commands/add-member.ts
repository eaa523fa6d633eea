import type { CommandContext } from '../context.js';
import { FOLDER_OPTIONS, TIMEOUT_OPTION, loadClusterFolder, parseTimeoutMs, planFromRecord, withClusterFolderLock, type ClusterFolder } from '../day2/cluster-folder.js';
import { checkMembers } from '../day2/health.js';
import { hexMemberId, membershipDrift, validateNewMember, withJoiningMember } from '../day2/membership.js';
import { relativeTo } from '../day2/paths.js';
import { CliError } from '../errors.js';
import { EtcdCallError, memberAdd, memberList, type ClientOptions, type EtcdMember, type MemberAddResponse } from '../etcd/client.js';
import { isPrivateOrLoopback } from '../ipv4.js';
import type { OptionSpec, ParsedOptions } from '../options.js';
import { renderClusterJson, renderEtcdctlEnv } from '../output.js';
import { issueLeaf, readClusterPki, type ClusterPki, type IssuedCert, type KeyPairPem } from '../pki/mint.js';
import type { ClusterPlan, MemberPlan } from '../plan.js';
import { renderUserData } from '../render.js';
import { PUBLIC_MODE, SECRET_MODE, updateOutputFolder } from '../write.js';

export const ADD_MEMBER_OPTIONS: readonly OptionSpec[] = [
  { name: 'ip', type: 'string', valueName: 'address', description: "The new member's IPv4 address (required)" },
  { name: 'name', type: 'string', valueName: 'name', description: 'The new member\'s name (default: the first free etcdN)' },
  {
    name: 'voter',
    type: 'boolean',
    description: 'Join as a voting member at once; by default it joins as a learner (no vote, no effect on quorum) and promotes itself once it has caught up',
  },
  ...FOLDER_OPTIONS,
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

/** The running cluster as the preflight found it. */
interface Preflight {
  /** A healthy member to send the change to. */
  readonly endpoint: string;
  /** The new member is already in the cluster, unstarted (an earlier add-member that failed to write): do not add it twice. */
  readonly alreadyAdded: EtcdMember | undefined;
}

/** preflight: every member healthy, and the cluster's membership is what cluster.json says. */
async function preflight(folder: ClusterFolder, joining: MemberPlan, client: ClientOptions, now: Date): Promise<Preflight> {
  const health = await checkMembers(folder.plan, client, now);
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
    throw new CliError('preflight', `ip: ${JSON.stringify(joining.ip)} is already the peer URL of running member ${existing.name} (ID ${hexMemberId(existing.ID)}), which cluster.json does not list`);
  }
  const drift = membershipDrift(folder.plan.members, existing ? running.filter((member) => member !== existing) : running);
  if (drift.length > 0) {
    throw new CliError('preflight', `cluster.json and the running cluster disagree: ${drift.join('; ')}; reconcile them (etcdctl member list/remove) before adding a member`);
  }
  return { endpoint, alreadyAdded: existing };
}

function summary(folder: ClusterFolder, plan: ClusterPlan, joining: MemberPlan, cert: IssuedCert, memberId: string, resumed: boolean, cwd: string): string {
  const relative = relativeTo(folder.outDir, cwd);
  const count = plan.members.length;
  const role = joining.learnerId !== undefined ? ' as a learner' : '';
  const next =
    joining.learnerId !== undefined
      ? [
          `Next: boot the new machine with ${relative}/user-data/${joining.name}.yaml. As a learner it gets the data but no vote,`,
          `so quorum stays ${Math.floor((count - 1) / 2) + 1} of ${count - 1} meanwhile; once it has caught up, the node promotes itself (etcd-promote.service).`,
        ]
      : [
          `Next: boot the new machine with ${relative}/user-data/${joining.name}.yaml now: the cluster counts it towards quorum`,
          `(${Math.floor(count / 2) + 1} of ${count}) from this moment, so it tolerates one fewer failure until the member has started.`,
        ];
  return [
    `${resumed ? 'Member was already added (unstarted); wrote its files' : 'Added member'} ${joining.name} (${joining.ip}, ID ${hexMemberId(memberId)})${role} to cluster ${plan.clusterName}: now ${count} members.`,
    `  ${joining.name.padEnd(8)}minted pki/${joining.name}.crt (expires ${cert.notAfter.slice(0, 10)})  user-data/${joining.name}.yaml (initial-cluster-state: existing)`,
    `Updated ${relative}/cluster.json and etcdctl.env.`,
    '',
    ...next,
    `Then check: etcd-cloudinit health${folder.plan.clusterName === 'etcd' ? '' : ` --cluster-name ${folder.plan.clusterName}`}`,
    ...(count % 2 === 0 ? [`Note: ${count} members tolerate no more failures than ${count - 1}; add or remove one more member.`] : []),
    '',
  ].join('\n');
}

/**
 * etcd refuses a change that would leave fewer members than a quorum connected for 5 s
 * ("unhealthy cluster"), e.g. right after a member restarted although all answer health: wait that out.
 */
async function addWithRetry(endpoint: string, peerUrl: string, client: ClientOptions, learner: boolean): Promise<MemberAddResponse> {
  const attempts = 8;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await memberAdd(endpoint, [peerUrl], { ...client, learner });
    } catch (error) {
      const retryable = error instanceof EtcdCallError && /unhealthy cluster/.test(error.message);
      if (!retryable || attempt === attempts) {
        throw new CliError('api', `member add ${peerUrl} on ${endpoint} failed: ${(error as Error).message}${retryable ? ' (some member has not been connected for 5 s; retry when health has been green a while)' : ''}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }
}

/** Holds the folder's lock from the first read to the last write. */
export function runAddMember(flags: ParsedOptions, context: CommandContext): Promise<number> {
  return withClusterFolderLock(flags, context, 'add-member', () => addMember(flags, context));
}

/** validate -> load -> plan -> preflight (health, membership, no learner) -> mint -> render -> member add (as a learner unless --voter) -> render with its ID -> write. */
async function addMember(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const timeoutMs = parseTimeoutMs(flags);
  const folder = loadClusterFolder(flags, context);
  const newMember = validateNewMember(flags.ip, flags.name, folder.record);
  if (!isPrivateOrLoopback(newMember.ip)) {
    context.stderr.write(`warning: ip: ${JSON.stringify(newMember.ip)} is a public address; etcd will listen on it, so firewall ports 2379-2380 to the cluster's own addresses\n`);
  }
  const learner = flags.voter !== true;
  const basePlan = planFromRecord(folder.record, [...folder.record.members, newMember], folder.out, context.cwd);
  // The learner's member ID is known only after member add: until then, the longest one stands in.
  const plan = withJoiningMember(basePlan, newMember.name, learner ? 'f'.repeat(16) : undefined);
  const joining = plan.members.find((member) => member.name === newMember.name)!;
  const client = { tls: folder.adminTls, timeoutMs };
  const now = context.now();

  const { endpoint, alreadyAdded } = await preflight(folder, joining, client, now);

  // Everything that can fail offline happens before the cluster changes.
  const current = readClusterPki(folder.plan, folder.existingPki);
  const ca: KeyPairPem = { certPem: current.ca.certPem, keyPem: current.ca.keyPem };
  const cert = await issueLeaf(plan, newMember.name, ca, {
    now,
    ...(context.keySource ? { keySource: context.keySource } : {}),
    ...(context.serialSource ? { serialSource: context.serialSource } : {}),
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
    const added = await addWithRetry(endpoint, joining.peerUrl, client, learner);
    memberId = added.member?.ID ?? '0';
  }
  const finalPlan = withJoiningMember(basePlan, newMember.name, joinedAsLearner ? hexMemberId(memberId) : undefined);
  const joined = finalPlan.members.find((member) => member.name === newMember.name)!;
  const userData = renderUserData(finalPlan, pki, newMember.name);

  try {
    updateOutputFolder(folder.outDir, {
      files: [
        { path: `pki/${newMember.name}.crt`, content: cert.certPem, mode: PUBLIC_MODE },
        { path: `pki/${newMember.name}.key`, content: cert.keyPem, mode: SECRET_MODE },
        { path: `user-data/${newMember.name}.yaml`, content: userData, mode: SECRET_MODE },
        { path: 'cluster.json', content: renderClusterJson(finalPlan, pki, now), mode: PUBLIC_MODE },
        { path: 'etcdctl.env', content: renderEtcdctlEnv(finalPlan), mode: PUBLIC_MODE },
      ],
    });
  } catch (error) {
    throw new CliError(
      'write',
      `${(error as Error).message.replace(/^\[write\] /, '')}; the cluster already lists ${joining.name} as an unstarted member: run add-member with the same --ip and --name again to write its files`,
    );
  }
  context.stdout.write(summary(folder, finalPlan, joined, cert, memberId, alreadyAdded !== undefined, context.cwd));
  return 0;
}
