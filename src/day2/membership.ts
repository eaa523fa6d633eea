import { isIPv4 } from 'node:net';
import { usageError } from '../errors.js';
import type { EtcdMember } from '../etcd/client.js';
import { RESERVED_MEMBER_NAMES, clusterSchema } from '../input.js';
import { isUnicastIPv4 } from '../ipv4.js';
import type { ClusterPlan, MemberPlan } from '../plan.js';
import type { ClusterRecord } from './cluster-folder.js';

const MEMBER_NAME = new RegExp((clusterSchema as { definitions: { memberName: { pattern: string } } }).definitions.memberName.pattern);
const MEMBER_NAME_RULE = 'is not a lowercase DNS label (a-z, 0-9 and \'-\', at most 63 characters, starting with a letter, not ending with \'-\')';
export const MAX_MEMBERS = 9;

/** validate for add-member: a free unicast address and a free name (default: the first free etcdN). */
export function validateNewMember(ip: unknown, name: unknown, record: ClusterRecord): { name: string; ip: string } {
  if (typeof ip !== 'string') throw usageError('validate', 'ip: is required (for example --ip 10.10.0.14)');
  if (!isIPv4(ip)) throw usageError('validate', `ip: ${JSON.stringify(ip)} is not an IPv4 address`);
  if (!isUnicastIPv4(ip)) throw usageError('validate', `ip: ${JSON.stringify(ip)} is not a unicast host address`);
  const ipOwner = record.members.find((member) => member.ip === ip);
  if (ipOwner) throw usageError('validate', `ip: ${JSON.stringify(ip)} is already used by member ${ipOwner.name}`);
  if (record.members.length >= MAX_MEMBERS) {
    throw usageError('validate', `ip: the cluster already has ${record.members.length} members; ${MAX_MEMBERS} is the most this tool manages`);
  }
  let memberName: string;
  if (name === undefined) {
    const taken = new Set(record.members.map((member) => member.name));
    let index = 1;
    while (taken.has(`etcd${index}`)) index += 1;
    memberName = `etcd${index}`;
  } else {
    if (typeof name !== 'string' || !MEMBER_NAME.test(name)) throw usageError('validate', `name: ${JSON.stringify(name)} ${MEMBER_NAME_RULE}`);
    if (RESERVED_MEMBER_NAMES.includes(name)) throw usageError('validate', `name: ${JSON.stringify(name)} is reserved for pki/${name}.crt; choose another member name`);
    if (record.members.some((member) => member.name === name)) throw usageError('validate', `name: ${JSON.stringify(name)} is already a member`);
    memberName = name;
  }
  return { name: memberName, ip };
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

/** Hex, as etcdctl prints member IDs (the API gives them as decimal strings). */
export function hexMemberId(id: string): string {
  return BigInt(id).toString(16);
}
