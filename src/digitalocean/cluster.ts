// The DigitalOcean steps of create-droplets and destroy-droplets, over DigitalOceanApi (our types).
// One path for real and dry runs: a dry run passes recordingApi(...) from dry-run.ts as the api.
import { CLIENT_PORT, METRICS_PORT, PEER_PORT } from '../plan.js';
import { plannedCallsOf, type PlannedCall } from './dry-run.js';
import { DigitalOceanApiError, isNotFound } from './errors.js';
import type { DigitalOceanApi, DnsRecord, DropletInfo, FirewallInfo, FirewallRule, FirewallSpec, VpcInfo } from './types.js';
import { clientRecordName, clientSrvRecordName, syncClientRecords } from './client-endpoint.js';

export type { PlannedCall } from './dry-run.js';

/** Every droplet of a cluster carries this tag; re-runs and destroy find the cluster by it. */
export const clusterTag = (clusterName: string) => `etcd-cluster-${clusterName}`;
/** The VPC and firewall this tool creates are named like the tag. */
export const clusterResourceName = clusterTag;
/** Marks a VPC as created by this tool, so destroy removes only what create made. */
export const VPC_DESCRIPTION_PREFIX = 'etcd-cloudinit cluster ';

export interface DropletMember {
  /** etcd member name. */
  readonly name: string;
  /** `<cluster>-<member>`: the droplet name and the DNS record name relative to the domain. */
  readonly dropletName: string;
  /** `<cluster>-<member>.<domain>`: what certificates and etcd URLs carry. */
  readonly hostname: string;
}

export interface DropletClusterSpec {
  readonly clusterName: string;
  readonly domain: string;
  readonly region: string;
  readonly size: string;
  readonly image: string | number;
  readonly sshKeys: readonly string[];
  /** --ssh-from: port 22 from these CIDRs; undefined: keep what digitalocean.json recorded (or, before it recorded it, what the firewall has). */
  readonly sshFrom: readonly string[] | undefined;
  /** --trusted-source: the client port from these sources (outside the VPC); undefined: keep the recorded list. */
  readonly trustedSources?: readonly string[] | undefined;
  /** What digitalocean.json recorded (absent before it recorded access): the rules this tool made last time. */
  readonly recordedAccess?: FirewallAccess | undefined;
  /** --drop-hand-added-rules: rules someone added to this tool's firewall are removed, not refused. */
  readonly dropHandAddedRules?: boolean;
  readonly vpcUuid: string | undefined;
  readonly vpcRange: string | undefined;
  readonly ttl: number;
  /** Members serve /metrics on 2381 (plain HTTP): the firewall lets the tag and the VPC reach it, nobody else. */
  readonly metrics: boolean;
  readonly members: readonly DropletMember[];
}

/**
 * Who may reach the cluster past the VPC: port 22 from `sshFrom`, etcd's client port from
 * `trustedSources` (a CIDR, `tag:NAME` or `droplet:ID`). digitalocean.json records it, so a re-run
 * without the flags keeps it, and the firewall's rules are exactly what it says.
 */
export interface FirewallAccess {
  readonly sshFrom: readonly string[];
  readonly trustedSources: readonly string[];
}

export interface StepOptions {
  readonly progress: (line: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

export interface CreateOptions extends StepOptions {
  readonly waitTimeoutMs: number;
  readonly pollIntervalMs: number;
  /** The user-data of a member: exactly what gen-userdata wrote for it (generated on first use, only by a real create). */
  readonly userData: (member: DropletMember) => Promise<string>;
  /** Where that user-data lives: what a dry run lists instead of the text. */
  readonly userDataPath: (member: DropletMember) => string;
  /** Called before anything is created when some members exist and some are missing; throws to refuse. */
  readonly checkResume?: (existing: readonly DropletMember[], missing: readonly DropletMember[]) => void;
}

/** In a dry run, what the run would do: the result's `plannedCalls` are the calls behind it. */
export type Outcome = 'created' | 'updated' | 'unchanged';

export interface MemberResult {
  readonly name: string;
  readonly dropletName: string;
  readonly hostname: string;
  readonly dropletId: number | undefined;
  readonly droplet: Outcome;
  readonly status: string | undefined;
  readonly privateIpv4: string | undefined;
  readonly publicIpv4: string | undefined;
  readonly dnsRecord: Outcome | undefined;
}

export interface CreateResult {
  readonly clusterName: string;
  readonly region: string;
  readonly domain: string;
  readonly tag: string;
  readonly vpc: { readonly id: string; readonly name: string; readonly ipRange: string | undefined; readonly outcome: Outcome; readonly createdByTool: boolean };
  readonly firewall: { readonly id: string; readonly name: string; readonly outcome: Outcome; readonly access: FirewallAccess };
  readonly members: readonly MemberResult[];
  /** What a dry run recorded instead of sending; empty for a real run. */
  readonly plannedCalls: readonly PlannedCall[];
}

/**
 * A failure after some resources exist: says what exists, so the command can tell the user how
 * to resume (re-run) or clean up (destroy-droplets).
 */
export class PartialClusterError extends Error {
  constructor(
    override readonly cause: Error,
    readonly existing: readonly string[],
    readonly missing: readonly string[],
  ) {
    super(cause.message);
    this.name = 'PartialClusterError';
  }
}

/** etcd's client and peer ports, the plan's own, as one firewall range (they are adjacent). */
const ETCD_PORTS = `${CLIENT_PORT}-${PEER_PORT}`;

/** A trusted source (`203.0.113.7/32`, `tag:k8s`, `droplet:123`) as a firewall rule's target. */
export function trustedTargets(sources: readonly string[]): FirewallRule['targets'] {
  const addresses = sources.filter((s) => !s.startsWith('tag:') && !s.startsWith('droplet:'));
  const tags = sources.filter((s) => s.startsWith('tag:')).map((s) => s.slice('tag:'.length));
  const dropletIds = sources.filter((s) => s.startsWith('droplet:')).map((s) => Number(s.slice('droplet:'.length)));
  return { ...(addresses.length > 0 && { addresses }), ...(tags.length > 0 && { tags }), ...(dropletIds.length > 0 && { dropletIds }) };
}

export function firewallSpec(spec: Pick<DropletClusterSpec, 'clusterName' | 'metrics'> & FirewallAccess, vpcRange: string): FirewallSpec {
  const tag = clusterTag(spec.clusterName);
  const everywhere = { addresses: ['0.0.0.0/0', '::/0'] };
  return {
    name: clusterResourceName(spec.clusterName),
    tags: [tag],
    inbound: [
      // Peers and clients from the cluster's own droplets and the VPC; the peer port never from anywhere else.
      { protocol: 'tcp', ports: ETCD_PORTS, targets: { addresses: [vpcRange], tags: [tag] } },
      // Clients from outside the VPC: only the trusted sources, and only the client port (always mutual TLS).
      ...(spec.trustedSources.length > 0 ? [{ protocol: 'tcp' as const, ports: String(CLIENT_PORT), targets: trustedTargets(spec.trustedSources) }] : []),
      // Metrics are plain HTTP: a scraper in the VPC (or a cluster droplet) only.
      ...(spec.metrics ? [{ protocol: 'tcp' as const, ports: String(METRICS_PORT), targets: { addresses: [vpcRange], tags: [tag] } }] : []),
      ...(spec.sshFrom.length > 0 ? [{ protocol: 'tcp' as const, ports: '22', targets: { addresses: [...spec.sshFrom] } }] : []),
    ],
    // A DigitalOcean firewall without outbound rules blocks all egress: the etcd download would fail.
    // The published spec requires `ports` on every rule, icmp included ("0").
    outbound: [
      { protocol: 'tcp', ports: 'all', targets: everywhere },
      { protocol: 'udp', ports: 'all', targets: everywhere },
      { protocol: 'icmp', ports: '0', targets: everywhere },
    ],
  };
}

const normPorts = (ports: string) => (ports === 'all' || ports === '0' || ports === '' ? '*' : ports);

/**
 * A rule set as single grants ("in tcp 2379 from tag:k8s"): DigitalOcean's control panel may merge a
 * hand-added source into one of our rules or add a rule of its own; either way it is a grant of its own.
 */
function grants(direction: 'in' | 'out', rules: readonly FirewallRule[]): string[] {
  return rules.flatMap((rule) => {
    const head = `${direction === 'in' ? 'inbound' : 'outbound'} ${rule.protocol} ${normPorts(rule.ports)}`;
    const from = direction === 'in' ? 'from' : 'to';
    const targets = [
      ...(rule.targets.addresses ?? []),
      ...(rule.targets.tags ?? []).map((t) => `tag:${t}`),
      ...(rule.targets.dropletIds ?? []).map((id) => `droplet:${id}`),
    ];
    return targets.length > 0 ? targets.map((t) => `${head} ${from} ${t}`) : [`${head} (no ${direction === 'in' ? 'source' : 'destination'})`];
  });
}

const allGrants = (f: Pick<FirewallSpec, 'inbound' | 'outbound'>) => [...grants('in', f.inbound), ...grants('out', f.outbound)];

/** The sources of the firewall's port-22 rules: what a run before digitalocean.json recorded access opened SSH to. */
const sshSourcesOf = (firewall: FirewallInfo | undefined) =>
  (firewall?.inbound ?? []).filter((r) => r.protocol === 'tcp' && r.ports === '22').flatMap((r) => r.targets.addresses ?? []);

/** The access this run sets: each flag given, else the record, else (a folder from before the record) what the firewall shows. */
export function resolveAccess(spec: Pick<DropletClusterSpec, 'sshFrom' | 'trustedSources' | 'recordedAccess'>, found: FirewallInfo | undefined): { access: FirewallAccess; previous: FirewallAccess } {
  const previous = spec.recordedAccess ?? { sshFrom: sshSourcesOf(found), trustedSources: [] };
  return { access: { sshFrom: spec.sshFrom ?? previous.sshFrom, trustedSources: spec.trustedSources ?? previous.trustedSources }, previous };
}

/**
 * Grants in the firewall that neither the last run of this tool nor this one made: someone added
 * them by hand. The tool owns its firewall, so it never drops them without being told.
 */
export function handAddedGrants(found: FirewallInfo, previousSpec: FirewallSpec, wanted: FirewallSpec): string[] {
  const ours = new Set([...allGrants(previousSpec), ...allGrants(wanted)]);
  return allGrants(found).filter((grant) => !ours.has(grant));
}

function sameRules(a: readonly FirewallRule[], b: readonly FirewallRule[]): boolean {
  const norm = (rules: readonly FirewallRule[]) =>
    rules
      .map((r) => JSON.stringify([r.protocol, normPorts(r.ports), [...(r.targets.addresses ?? [])].sort(), [...(r.targets.tags ?? [])].sort(), [...(r.targets.dropletIds ?? [])].sort()]))
      .sort()
      .join('\n');
  return norm(a) === norm(b);
}

const isUsable = (droplet: DropletInfo) => droplet.status === 'active' && droplet.privateIpv4 !== undefined;

/** What one create run knows and has done so far; each phase below reads and extends it. */
interface CreateRun {
  readonly api: DigitalOceanApi;
  readonly spec: DropletClusterSpec;
  readonly options: CreateOptions;
  readonly tag: string;
  /** Members' droplets by member name, refreshed while waiting. */
  readonly droplets: Map<string, DropletInfo>;
  /** Resources that exist now, for the message of a failure part-way. */
  readonly existing: string[];
}

type VpcResult = CreateResult['vpc'];

/** The token works, the account can take the droplets, the zone exists, no stranger holds a name. */
async function preflight(run: CreateRun): Promise<void> {
  const { api, spec, tag, droplets, options } = run;
  const refuse = (message: string, kind: DigitalOceanApiError['kind'] = 'invalid') => new DigitalOceanApiError(kind, 'preflight', message);
  const account = await api.getAccount();
  if (account.status && account.status !== 'active') {
    throw refuse(`the DigitalOcean account is ${account.status}${account.statusMessage ? ` (${account.statusMessage})` : ''}; it cannot create droplets`, 'forbidden');
  }
  try {
    await api.getDomain(spec.domain);
  } catch (error) {
    if (isNotFound(error)) {
      throw refuse(`domain ${spec.domain} is not on DigitalOcean DNS: add it (Networking > Domains, or POST /v2/domains) and delegate it to ns1/ns2/ns3.digitalocean.com, then re-run`, 'not-found');
    }
    throw error;
  }
  const all = await api.listDroplets();
  const tagged = all.filter((d) => d.tags.includes(tag));
  for (const member of spec.members) {
    const matches = tagged.filter((d) => d.name === member.dropletName);
    if (matches.length > 1) {
      throw refuse(`${matches.length} droplets named ${member.dropletName} carry tag ${tag} (ids ${matches.map((d) => d.id).join(', ')}); delete the extra ones, then re-run`);
    }
    if (matches[0]) {
      droplets.set(member.name, matches[0]);
      continue;
    }
    const stranger = all.find((d) => d.name === member.dropletName);
    if (stranger) {
      throw refuse(`a droplet named ${member.dropletName} (id ${stranger.id}) exists without tag ${tag}; it is not part of this cluster: rename or delete it, or choose another --cluster-name`);
    }
  }
  for (const stray of tagged.filter((d) => !spec.members.some((m) => m.dropletName === d.name))) {
    options.progress(`note: droplet ${stray.name} (id ${stray.id}) carries ${tag} but is not a member of this plan; left alone`);
  }
  const wrongRegion = [...droplets.values()].find((d) => d.region !== undefined && d.region !== spec.region);
  if (wrongRegion) throw refuse(`droplet ${wrongRegion.name} of this cluster is in ${wrongRegion.region}, not --region ${spec.region}; a cluster stays in one region`);
  const missing = spec.members.filter((m) => !droplets.has(m.name));
  if (account.dropletLimit !== undefined && all.length + missing.length > account.dropletLimit) {
    throw refuse(`the account may have ${account.dropletLimit} droplets and has ${all.length}; ${missing.length} more are needed. Ask DigitalOcean to raise the limit, or delete droplets`);
  }
  for (const [name, droplet] of droplets) {
    options.progress(`${name}: droplet ${droplet.name} exists (id ${droplet.id}, ${droplet.status})`);
    run.existing.push(`droplet ${droplet.name} (id ${droplet.id})`);
  }
  if (droplets.size > 0) options.checkResume?.(spec.members.filter((m) => droplets.has(m.name)), missing);
}

/** --vpc-uuid, else the VPC the cluster's droplets use, else ours by name, else a new one. */
async function ensureVpc(run: CreateRun): Promise<VpcResult> {
  const { api, spec, options } = run;
  const name = clusterResourceName(spec.clusterName);
  const inUse = [...new Set([...run.droplets.values()].map((d) => d.vpcUuid).filter((id): id is string => id !== undefined))];
  if (inUse.length > 1) throw new DigitalOceanApiError('invalid', 'preflight', `the cluster's droplets sit in ${inUse.length} VPCs (${inUse.join(', ')}); peers must share one`);
  if (spec.vpcUuid && inUse[0] && inUse[0] !== spec.vpcUuid) {
    throw new DigitalOceanApiError('invalid', 'preflight', `the cluster's droplets sit in VPC ${inUse[0]}, not --vpc-uuid ${spec.vpcUuid}`);
  }
  const wantedId = spec.vpcUuid ?? inUse[0];
  const vpc: VpcInfo | undefined = wantedId ? await api.getVpc(wantedId) : (await api.listVpcs()).find((v) => v.name === name);
  if (vpc) {
    if (vpc.region && vpc.region !== spec.region) throw new DigitalOceanApiError('invalid', 'preflight', `VPC ${vpc.name} (${vpc.id}) is in ${vpc.region}, not --region ${spec.region}`);
    if (spec.vpcRange && vpc.ipRange && vpc.ipRange !== spec.vpcRange) options.progress(`note: VPC ${vpc.name} exists with range ${vpc.ipRange}; --vpc-range ${spec.vpcRange} is ignored`);
    options.progress(`vpc: using ${vpc.name} (${vpc.id}, ${vpc.ipRange ?? 'range unknown'})`);
    const createdByTool = vpc.description?.startsWith(VPC_DESCRIPTION_PREFIX) ?? false;
    return { id: vpc.id, name: vpc.name, ipRange: vpc.ipRange, outcome: 'unchanged', createdByTool };
  }
  const request = { name, region: spec.region, description: `${VPC_DESCRIPTION_PREFIX}${spec.clusterName}`, ...(spec.vpcRange && { ipRange: spec.vpcRange }) };
  const created = await api.createVpc(request);
  run.existing.push(`VPC ${created.name} (${created.id})`);
  options.progress(`vpc: created ${created.name} (${created.id}, ${created.ipRange ?? 'range unknown'})`);
  return { id: created.id, name: created.name, ipRange: created.ipRange, outcome: 'created', createdByTool: true };
}

/** One create call per missing member: each member's user-data is its own (multi-create shares one). */
async function ensureDroplets(run: CreateRun, vpcId: string): Promise<Map<string, Outcome>> {
  const { api, spec, options, tag } = run;
  const outcomes = new Map<string, Outcome>();
  for (const member of spec.members) {
    if (run.droplets.has(member.name)) {
      outcomes.set(member.name, 'unchanged');
      continue;
    }
    const droplet = await api.createDroplet({
      name: member.dropletName,
      region: spec.region,
      size: spec.size,
      image: spec.image,
      sshKeys: [...spec.sshKeys],
      tags: [tag],
      monitoring: true,
      vpcUuid: vpcId,
      userData: { path: options.userDataPath(member), read: () => options.userData(member) },
    });
    run.droplets.set(member.name, droplet);
    outcomes.set(member.name, 'created');
    run.existing.push(`droplet ${droplet.name} (id ${droplet.id})`);
    options.progress(`${member.name}: created droplet ${droplet.name} (id ${droplet.id})`);
  }
  return outcomes;
}

/** Polls (one list call for all members) until each droplet is active with its private IPv4; bounded. */
async function waitUntilUsable(run: CreateRun): Promise<void> {
  const { api, spec, options, tag } = run;
  const started = options.now();
  const deadline = started + options.waitTimeoutMs;
  const reported = new Set<string>();
  // A line every 30 s while nothing else happens, so a long wait does not look like a hang.
  let lastNote = started;
  for (;;) {
    const current = await api.listDroplets({ tagName: tag });
    for (const member of spec.members) {
      const droplet = current.find((d) => d.name === member.dropletName);
      if (droplet) run.droplets.set(member.name, droplet);
      if (droplet && isUsable(droplet) && !reported.has(member.name)) {
        reported.add(member.name);
        options.progress(`${member.name}: active, private ${droplet.privateIpv4}${droplet.publicIpv4 ? `, public ${droplet.publicIpv4}` : ''}`);
      }
    }
    const waiting = spec.members.filter((m) => !isUsable(run.droplets.get(m.name) ?? ({ status: 'missing' } as DropletInfo)));
    if (waiting.length === 0) return;
    const states = waiting.map((m) => `${m.dropletName} (${run.droplets.get(m.name)?.status ?? 'missing'})`).join(', ');
    if (options.now() - lastNote >= 30_000) {
      lastNote = options.now();
      options.progress(`waiting for ${states}: ${Math.round((lastNote - started) / 1000)} s of at most ${Math.round(options.waitTimeoutMs / 1000)} s`);
    }
    if (options.now() >= deadline) {
      throw new DigitalOceanApiError('unexpected', 'wait for droplets', `droplets not active with a private IPv4 after ${Math.round(options.waitTimeoutMs / 1000)} s: ${states}`);
    }
    await options.sleep(Math.min(options.pollIntervalMs, Math.max(0, deadline - options.now())));
  }
}

/** One A record per member, relative to the zone, short TTL; a stale one is updated, extras removed. */
async function ensureRecords(run: CreateRun): Promise<Map<string, Outcome>> {
  const { api, spec, options } = run;
  const records = await api.listDomainRecords(spec.domain);
  const outcomes = new Map<string, Outcome>();
  for (const member of spec.members) {
    const address = run.droplets.get(member.name)?.privateIpv4;
    const [first, ...extra] = records.filter((r) => r.type === 'A' && r.name === member.dropletName);
    if (address === undefined) throw new DigitalOceanApiError('unexpected', `create DNS record ${member.hostname}`, `${member.dropletName} has no private IPv4`);
    const wanted = { name: member.dropletName, data: address, ttl: spec.ttl };
    const outcome: Outcome = !first ? 'created' : first.data !== wanted.data || first.ttl !== spec.ttl ? 'updated' : 'unchanged';
    if (outcome === 'created') await api.createARecord(spec.domain, wanted);
    if (outcome === 'updated') await api.updateARecord(spec.domain, first!.id, wanted);
    // A second A record would hand out a stale address half of the time.
    for (const record of extra) await api.deleteDomainRecord(spec.domain, record.id);
    if (outcome !== 'unchanged') run.existing.push(`DNS record ${member.hostname}`);
    outcomes.set(member.name, outcome);
    options.progress(`${member.name}: DNS ${member.hostname} -> ${address} (${outcome})`);
  }
  return outcomes;
}

/** The firewall on the cluster tag: etcd's ports from the tag and the VPC, the client port from the trusted sources, 22 from --ssh-from. */
export async function ensureFirewall(
  api: DigitalOceanApi,
  spec: Pick<DropletClusterSpec, 'clusterName' | 'metrics' | 'sshFrom' | 'trustedSources' | 'recordedAccess' | 'dropHandAddedRules'>,
  vpcRange: string | undefined,
  progress: (line: string) => void,
): Promise<CreateResult['firewall']> {
  const tag = clusterTag(spec.clusterName);
  if (vpcRange === undefined) {
    throw new DigitalOceanApiError('unexpected', `create firewall ${clusterResourceName(spec.clusterName)}`, `the VPC reported no IP range, so ports ${ETCD_PORTS} cannot be limited to it`);
  }
  const found = (await api.listFirewalls()).find((f) => f.name === clusterResourceName(spec.clusterName));
  const { access, previous } = resolveAccess(spec, found);
  const wanted = firewallSpec({ ...spec, ...access }, vpcRange);
  const handAdded = found ? handAddedGrants(found, firewallSpec({ ...spec, ...previous }, vpcRange), wanted) : [];
  if (handAdded.length > 0 && spec.dropHandAddedRules !== true) {
    throw new DigitalOceanApiError(
      'invalid',
      `update firewall ${wanted.name}`,
      `firewall ${wanted.name} (${found!.id}) has rules this tool did not make: ${handAdded.join('; ')}. ` +
        'It keeps its firewall exactly as digitalocean.json records it, so it changes nothing while they are there. ' +
        `Make a client source part of the record (--trusted-source tag:NAME, a CIDR or droplet:ID), put your own rules in a second firewall on tag ${tag}, ` +
        'or drop them with --drop-hand-added-rules',
    );
  }
  const current = !found
    ? 'missing'
    : sameRules(found.inbound, wanted.inbound) && sameRules(found.outbound, wanted.outbound) && found.tags.join() === wanted.tags.join()
      ? 'same'
      : 'stale';
  const result =
    current === 'missing'
      ? { info: await api.createFirewall(wanted), outcome: 'created' as const }
      : current === 'stale'
        ? { info: await api.updateFirewall(found!.id, wanted), outcome: 'updated' as const }
        : { info: found!, outcome: 'unchanged' as const };
  if (handAdded.length > 0) progress(`firewall: dropped rules added by hand (--drop-hand-added-rules): ${handAdded.join('; ')}`);
  const ssh = access.sshFrom.length > 0 ? access.sshFrom.join(', ') : 'nowhere';
  const clients = access.trustedSources.length > 0 ? access.trustedSources.join(', ') : 'no trusted source';
  const ports = spec.metrics ? `${ETCD_PORTS} and ${METRICS_PORT}` : ETCD_PORTS;
  progress(`firewall: ${wanted.name} (${result.info.id}) ${result.outcome}: ${ports} from ${tag} and ${vpcRange}; ${CLIENT_PORT} from ${clients}; 22 from ${ssh}`);
  return { id: result.info.id, name: wanted.name, outcome: result.outcome, access };
}

/**
 * preflight -> VPC -> droplets -> wait for active + private IPv4 -> DNS A records -> firewall.
 * Idempotent: existing droplets are found by tag and name, and only what is missing or stale
 * is created or updated. With a recordingApi the same decisions are made and the calls recorded.
 */
export async function createDropletCluster(api: DigitalOceanApi, spec: DropletClusterSpec, options: CreateOptions): Promise<CreateResult> {
  const run: CreateRun = { api, spec, options, tag: clusterTag(spec.clusterName), droplets: new Map(), existing: [] };
  await preflight(run);
  try {
    const vpc = await ensureVpc(run);
    const dropletOutcomes = await ensureDroplets(run, vpc.id);
    await waitUntilUsable(run);
    const recordOutcomes = await ensureRecords(run);
    // The stable client name lists the members it made (every one a voter from the start); members
    // added or removed since are the day-2 commands' to list and delist.
    const listed = spec.members.map((m) => ({ hostname: m.hostname, privateIpv4: run.droplets.get(m.name)!.privateIpv4! }));
    const clientName = await syncClientRecords(api, spec.domain, spec.clusterName, listed, spec.ttl, options.progress, false);
    if (clientName.added.length > 0) run.existing.push(`DNS records of ${spec.clusterName}.${spec.domain}`);
    const firewall = await ensureFirewall(run.api, run.spec, vpc.ipRange, run.options.progress);
    return {
      clusterName: spec.clusterName,
      region: spec.region,
      domain: spec.domain,
      tag: run.tag,
      vpc,
      firewall,
      members: spec.members.map((m) => {
        const droplet = run.droplets.get(m.name);
        return {
          name: m.name,
          dropletName: m.dropletName,
          hostname: m.hostname,
          dropletId: droplet?.id,
          droplet: dropletOutcomes.get(m.name) ?? 'unchanged',
          status: droplet?.status,
          privateIpv4: droplet?.privateIpv4,
          publicIpv4: droplet?.publicIpv4,
          dnsRecord: recordOutcomes.get(m.name),
        };
      }),
      plannedCalls: plannedCallsOf(api),
    };
  } catch (error) {
    if (run.existing.length > 0 && error instanceof Error) {
      const notDone = [
        ...spec.members.filter((m) => !run.existing.some((e) => e.startsWith(`droplet ${m.dropletName} `))).map((m) => `droplet ${m.dropletName}`),
        'DNS records',
        'firewall',
      ];
      throw new PartialClusterError(error, run.existing, notDone);
    }
    throw error;
  }
}

export interface DestroySpec {
  readonly clusterName: string;
  /** Zones to remove the members' A records from. */
  readonly domains: readonly string[];
  /** Record names known from create-droplets' state file, for records whose droplet is already gone. */
  readonly knownRecordNames: readonly string[];
  /** Delete the VPC only if this tool created it (its description says so). */
  readonly vpcDeleteTimeoutMs: number;
}

export interface DestroyFindings {
  readonly droplets: readonly DropletInfo[];
  readonly firewall: FirewallInfo | undefined;
  readonly records: readonly { readonly domain: string; readonly record: DnsRecord }[];
  readonly vpc: VpcInfo | undefined;
}

/** What destroy-droplets would remove; reads only. */
export async function findDropletCluster(api: DigitalOceanApi, spec: DestroySpec): Promise<DestroyFindings> {
  const tag = clusterTag(spec.clusterName);
  const droplets = await api.listDroplets({ tagName: tag });
  const firewall = (await api.listFirewalls()).find((f) => f.name === clusterResourceName(spec.clusterName));
  // Only names that are certainly ours: the droplets' own, what create-droplets recorded, and the stable client name.
  const names = new Set([...droplets.map((d) => d.name), ...spec.knownRecordNames, clientRecordName(spec.clusterName)]);
  const records: { domain: string; record: DnsRecord }[] = [];
  for (const domain of spec.domains) {
    let all: DnsRecord[];
    try {
      all = await api.listDomainRecords(domain);
    } catch (error) {
      if (isNotFound(error)) continue;
      throw error;
    }
    for (const record of all) {
      if ((record.type === 'A' && names.has(record.name)) || (record.type === 'SRV' && record.name === clientSrvRecordName(spec.clusterName))) records.push({ domain, record });
    }
  }
  const vpcName = clusterResourceName(spec.clusterName);
  const vpc = (await api.listVpcs()).find((v) => v.name === vpcName && (v.description ?? '').startsWith(VPC_DESCRIPTION_PREFIX));
  return { droplets, firewall, records, vpc };
}

/** Deletes what findDropletCluster found: DNS records, droplets, firewall, then the VPC once it is empty. */
export async function destroyDropletCluster(api: DigitalOceanApi, spec: DestroySpec, found: DestroyFindings, options: StepOptions): Promise<void> {
  const { progress } = options;
  const tag = clusterTag(spec.clusterName);
  const step = async (what: string, run: () => Promise<void>) => {
    await run();
    progress(`deleted ${what}`);
  };
  // Names first, so nothing resolves to an address that is about to be reused.
  for (const { domain, record } of found.records) {
    await step(`DNS record ${record.name}.${domain}`, () => api.deleteDomainRecord(domain, record.id));
  }
  if (found.droplets.length > 0) {
    await step(`${found.droplets.length} droplet(s) tagged ${tag}: ${found.droplets.map((d) => d.name).join(', ')}`, () => api.deleteDropletsByTag(tag));
  }
  if (found.firewall) {
    const id = found.firewall.id;
    await step(`firewall ${found.firewall.name}`, () => api.deleteFirewall(id));
  }
  if (found.vpc) {
    const vpc = found.vpc;
    // The platform releases deleted droplets from the VPC a little later: retry the conflict, bounded.
    await step(`VPC ${vpc.name}`, async () => {
      const deadline = options.now() + spec.vpcDeleteTimeoutMs;
      for (let attempt = 1; ; attempt++) {
        try {
          await api.deleteVpc(vpc.id);
          return;
        } catch (error) {
          const conflict = error instanceof DigitalOceanApiError && (error.status === 409 || error.status === 403);
          if (!conflict || options.now() >= deadline) throw error;
          if (attempt === 1) progress(`vpc: ${vpc.name} still has members being released; waiting`);
          await options.sleep(Math.min(500 * 2 ** (attempt - 1), 5000, Math.max(0, deadline - options.now())));
        }
      }
    });
  }
}
