import { isIPv4 } from 'node:net';
import { CliError, usageError } from '../errors.js';
import { EtcdCallError, type ClientOptions, type EtcdMember, type MemberAddResponse } from '../etcd/client.js';
import type { Day2Effects } from './effects.js';
import type { Machines } from './machines.js';
import { FOLDER_FILES, type ClusterRecord, type MemberRecord } from '../cluster-folder.js';
import { RESERVED_MEMBER_NAMES, clusterSchema, memberHostname } from '../input.js';
import { isUnicastIPv4 } from '../ipv4.js';
import type { ClusterPlan, MemberPlan } from '../plan.js';

const definitions = (clusterSchema as { definitions: Record<'memberName' | 'hostname', { pattern: string; errorMessage: string }> }).definitions;
const MEMBER_NAME = new RegExp(definitions.memberName.pattern);
const HOSTNAME = new RegExp(definitions.hostname.pattern);
export const MAX_MEMBERS = 9;

/** The flags of add-member that say who the new member is. */
export interface NewMemberFlags {
  readonly ip?: unknown;
  readonly hostname?: unknown;
  readonly name?: unknown;
}

/**
 * validate for add-member: a free name (default: the first free etcdN) and the member's address
 * in the cluster's own mode: an IPv4 in IP mode; in DNS-member mode a DNS name, which a
 * `--domain` cluster (and so every cluster create-droplets made) derives as `<cluster>-<name>.<domain>`.
 */
export function validateNewMember(flags: NewMemberFlags, record: ClusterRecord, machines: Pick<Machines, 'domain' | 'checkName' | 'checkHostname'>, used: ReadonlyMap<string, string>): MemberRecord {
  if (record.members.length >= MAX_MEMBERS) {
    throw usageError('validate', `name: the cluster already has ${record.members.length} members; ${MAX_MEMBERS} is the most this tool manages`);
  }
  const name = validateNewName(flags.name, used);
  const byName = record.members.every((member) => member.hostname !== undefined);
  if (!byName) {
    if (flags.hostname !== undefined) throw usageError('validate', `hostname: the members of cluster ${record.clusterName} are addressed by IPv4; give the new member's --ip instead`);
    return { name, ip: validateNewIp(flags.ip, record) };
  }
  if (flags.ip !== undefined) {
    throw usageError('validate', `ip: the members of cluster ${record.clusterName} are named by DNS (DNS-member mode), and each listens on the address its machine has; give --hostname${record.domain ? ', or only --name to use <cluster-name>-<name>.' + record.domain : ''}`);
  }
  const domain = machines.domain ?? record.domain;
  machines.checkHostname(flags.hostname);
  machines.checkName(name, 'name', '');
  let hostname: string;
  if (flags.hostname !== undefined) {
    if (typeof flags.hostname !== 'string' || !HOSTNAME.test(flags.hostname)) throw usageError('validate', `hostname: ${JSON.stringify(flags.hostname)} ${definitions.hostname.errorMessage}`);
    hostname = flags.hostname;
  } else if (domain !== undefined) {
    hostname = memberHostname(record.clusterName, name, domain);
  } else {
    throw usageError('validate', `hostname: is required: the members of cluster ${record.clusterName} are named by DNS (for example --hostname etcd4.example.com)`);
  }
  const owner = record.members.find((member) => member.hostname === hostname);
  if (owner) throw usageError('validate', `hostname: ${JSON.stringify(hostname)} is already used by member ${owner.name}`);
  return { name, hostname };
}

/** A new machine's IPv4 (add-member --ip, a replacement's): unicast, and no member's yet. `ownerNote` ends the message for one in use. */
export function validateNewIp(ip: unknown, record: ClusterRecord, field = 'ip', ownerNote = ''): string {
  if (typeof ip !== 'string') throw usageError('validate', `${field}: is required (for example --ip 10.10.0.14)`);
  if (!isIPv4(ip)) throw usageError('validate', `${field}: ${JSON.stringify(ip)} is not an IPv4 address`);
  if (!isUnicastIPv4(ip)) throw usageError('validate', `${field}: ${JSON.stringify(ip)} is not a unicast host address`);
  const owner = record.members.find((member) => member.ip === ip);
  if (owner) throw usageError('validate', `${field}: ${JSON.stringify(ip)} is already used by member ${owner.name}${ownerNote}`);
  return ip;
}

/** Why a member name is no DNS label (the schema's memberName rule), or undefined. */
export function memberNameProblem(name: string): string | undefined {
  return MEMBER_NAME.test(name) ? undefined : definitions.memberName.errorMessage;
}

/** `used`: every name the cluster has used, with where it was seen (usedMemberNames in names.ts); none is handed out again. */
function validateNewName(name: unknown, used: ReadonlyMap<string, string>): string {
  if (name === undefined) {
    let index = 1;
    while (used.has(`etcd${index}`)) index += 1;
    return `etcd${index}`;
  }
  if (typeof name !== 'string' || !MEMBER_NAME.test(name)) throw usageError('validate', `name: ${JSON.stringify(name)} ${definitions.memberName.errorMessage}`);
  if (RESERVED_MEMBER_NAMES.includes(name)) throw usageError('validate', `name: ${JSON.stringify(name)} is reserved for ${FOLDER_FILES.cert(name)}; choose another member name`);
  const why = used.get(name);
  if (why !== undefined) throw usageError('validate', `name: ${JSON.stringify(name)} ${why}; a member name is never used twice in a cluster (an old certificate for it may still be valid): choose another`);
  return name;
}

/**
 * plan for add-member: the current members plus one that joins with initial-cluster-state existing,
 * as a learner that promotes itself when `learnerId` (its hex member ID) is given.
 */
export function withJoiningMember(plan: ClusterPlan, name: string, learnerId?: string): ClusterPlan {
  const joining = (member: MemberPlan): MemberPlan => ({ ...member, initialClusterState: 'existing', ...(learnerId !== undefined ? { learnerId } : {}) });
  return { ...plan, members: plan.members.map((member) => (member.name === name ? joining(member) : member)) };
}

/** How the running cluster's membership differs from what cluster.json says, as sentences; empty when they agree. */
export function membershipDrift(expected: readonly MemberPlan[], actual: readonly EtcdMember[]): string[] {
  const drift: string[] = [];
  for (const member of expected) {
    if (!actual.some((running) => running.peerURLs?.includes(member.peerUrl))) drift.push(`${member.name} (${member.peerUrl}) is in cluster.json but not in the cluster`);
  }
  for (const running of actual) {
    if (!expected.some((member) => running.peerURLs?.includes(member.peerUrl))) {
      drift.push(`${running.name || 'an unstarted member'} (${(running.peerURLs ?? []).join(',')}, ID ${running.ID}) is in the cluster but not in cluster.json`);
    }
  }
  return drift;
}

/**
 * etcd refuses a change that would leave fewer members than a quorum connected for 5 s
 * ("unhealthy cluster"), e.g. right after a member restarted although all answer health: wait that out.
 */
export async function addWithRetry(effects: Day2Effects, endpoint: string, peerUrl: string, client: ClientOptions, learner: boolean): Promise<MemberAddResponse> {
  const attempts = 8;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await effects.memberAdd(endpoint, peerUrl, client, learner);
    } catch (error) {
      const retryable = error instanceof EtcdCallError && /unhealthy cluster/.test(error.message);
      if (!retryable || attempt === attempts) {
        throw new CliError('api', `member add ${peerUrl} on ${endpoint} failed: ${(error as Error).message}${retryable ? ' (some member has not been connected for 5 s; retry when health has been green a while)' : ''}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }
}

