import { promises as dns } from 'node:dns';
import type { ClusterPlan } from '../plan.js';

/**
 * health's check of the cluster's stable client name (issue 29): it must resolve to exactly the
 * voting members, or a client configured with it is sent to a member that is gone, or never to a
 * new one. Where the tool keeps the records (create-droplets) this finds drift; where the user
 * does (their DNS, a load balancer's name), it is the only check there is.
 */
export interface ClientEndpointCheck {
  readonly name: string;
  /** What the name resolves to here (IPv4), sorted. */
  readonly addresses: readonly string[];
  /** The voting members' addresses, sorted. */
  readonly voters: readonly string[];
  readonly matches: boolean;
  /** Why it does not match, and what to do; null when it matches. */
  readonly problem: string | null;
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref())]);

async function addressesOf(host: string, timeoutMs: number): Promise<string[]> {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return [host];
  const found = await withTimeout(dns.lookup(host, { all: true, family: 4 }), timeoutMs, `resolve ${host}`);
  return [...new Set(found.map((entry) => entry.address))];
}

/** undefined when the cluster has no stable name. `voterNames`: the running cluster's voting members (else cluster.json's). */
export async function checkClientEndpoint(plan: ClusterPlan, voterNames: readonly string[], timeoutMs: number, managedBy: string | undefined): Promise<ClientEndpointCheck | undefined> {
  const name = plan.clientEndpoint;
  if (name === undefined) return undefined;
  const voters = plan.members.filter((member) => voterNames.includes(member.name));
  const voterAddresses = (await Promise.all(voters.map((member) => addressesOf(member.host, timeoutMs).catch(() => [])))).flat().sort();
  let addresses: string[];
  try {
    addresses = (await addressesOf(name, timeoutMs)).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const fix = managedBy ?? `create an A record per voting member (${voterAddresses.join(', ')}) in your DNS, or point it at a TCP load balancer in front of them (docs/day2.md, "One name for clients")`;
    return { name, addresses: [], voters: voterAddresses, matches: false, problem: `${name} does not resolve here (${code ?? (error as Error).message}): ${fix}` };
  }
  const matches = addresses.length === voterAddresses.length && addresses.every((address, index) => address === voterAddresses[index]);
  const missing = voterAddresses.filter((address) => !addresses.includes(address));
  const extra = addresses.filter((address) => !voterAddresses.includes(address));
  const problem = matches
    ? null
    : `${name} resolves to ${addresses.join(', ')}, not to exactly the voting members${missing.length > 0 ? `: missing ${missing.join(', ')}` : ''}${extra.length > 0 ? `${missing.length > 0 ? ';' : ':'} not a voting member: ${extra.join(', ')}` : ''}. ${managedBy ?? 'Update its records (or the load balancer) to the voting members'}`;
  return { name, addresses, voters: voterAddresses, matches, problem };
}
