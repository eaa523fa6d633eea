// The DigitalOcean steps of create-droplets and destroy-droplets, over DigitalOceanApi (our types).
import {
  DigitalOceanApiError,
  type DigitalOceanApi,
  type DnsRecord,
  type DropletInfo,
  type FirewallInfo,
  type FirewallRule,
  type FirewallSpec,
  type VpcInfo,
} from './client.js';

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
  readonly sshFrom: readonly string[];
  readonly vpcUuid: string | undefined;
  readonly vpcRange: string | undefined;
  readonly ttl: number;
  readonly members: readonly DropletMember[];
}

/** One API call a dry run would make, in the API's own wire terms. */
export interface PlannedCall {
  readonly method: 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly body?: Record<string, unknown>;
}

export interface StepOptions {
  readonly dryRun: boolean;
  readonly progress: (line: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

export interface CreateOptions extends StepOptions {
  readonly waitTimeoutMs: number;
  readonly pollIntervalMs: number;
  /** The user-data of a member: exactly what gen-userdata wrote for it (generated on first use). */
  readonly userData: (member: DropletMember) => Promise<string>;
  /** Where that user-data lives, for dry-run output. */
  readonly userDataPath: (member: DropletMember) => string;
  /** Called before anything is created when some members exist and some are missing; throws to refuse. */
  readonly checkResume?: (existing: readonly DropletMember[], missing: readonly DropletMember[]) => void;
}

export type Outcome = 'created' | 'updated' | 'unchanged' | 'planned';

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
  readonly vpc: { readonly id: string | undefined; readonly name: string; readonly ipRange: string | undefined; readonly outcome: Outcome; readonly createdByTool: boolean };
  readonly firewall: { readonly id: string | undefined; readonly name: string; readonly outcome: Outcome };
  readonly members: readonly MemberResult[];
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

export function firewallSpec(spec: Pick<DropletClusterSpec, 'clusterName' | 'sshFrom'>, vpcRange: string): FirewallSpec {
  const tag = clusterTag(spec.clusterName);
  const everywhere = { addresses: ['0.0.0.0/0', '::/0'] };
  return {
    name: clusterResourceName(spec.clusterName),
    tags: [tag],
    inbound: [
      // Peers and clients only from the cluster's own droplets and the VPC; never the internet.
      { protocol: 'tcp', ports: '2379-2380', targets: { addresses: [vpcRange], tags: [tag] } },
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

function wireFirewall(spec: FirewallSpec): Record<string, unknown> {
  return {
    name: spec.name,
    tags: spec.tags,
    inbound_rules: spec.inbound.map((r) => ({ protocol: r.protocol, ports: r.ports, sources: r.targets })),
    outbound_rules: spec.outbound.map((r) => ({ protocol: r.protocol, ports: r.ports, destinations: r.targets })),
  };
}

function sameRules(a: readonly FirewallRule[], b: readonly FirewallRule[]): boolean {
  const norm = (rules: readonly FirewallRule[]) =>
    rules
      .map((r) => JSON.stringify([r.protocol, r.ports === 'all' || r.ports === '0' || r.ports === '' ? '*' : r.ports, [...(r.targets.addresses ?? [])].sort(), [...(r.targets.tags ?? [])].sort()]))
      .sort()
      .join('\n');
  return norm(a) === norm(b);
}

const isUsable = (droplet: DropletInfo) => droplet.status === 'active' && droplet.privateIpv4 !== undefined;

/**
 * preflight -> VPC -> droplets -> wait for active + private IPv4 -> DNS A records -> firewall.
 * Idempotent: existing droplets are found by tag and name, and only what is missing is created.
 */
export async function createDropletCluster(api: DigitalOceanApi, spec: DropletClusterSpec, options: CreateOptions): Promise<CreateResult> {
  const { progress, dryRun } = options;
  const tag = clusterTag(spec.clusterName);
  const plannedCalls: PlannedCall[] = [];
  const plan = (call: PlannedCall) => {
    plannedCalls.push(call);
    progress(`[dry-run] ${call.method} ${call.path}${call.body ? ` ${JSON.stringify(call.body)}` : ''}`);
  };

  // preflight: the token works, the domain is on DigitalOcean DNS, the account has room.
  const account = await api.getAccount();
  if (account.status && account.status !== 'active') {
    throw new DigitalOceanApiError('forbidden', 'preflight', `the DigitalOcean account is ${account.status}${account.statusMessage ? ` (${account.statusMessage})` : ''}; it cannot create droplets`);
  }
  try {
    await api.getDomain(spec.domain);
  } catch (error) {
    if (error instanceof DigitalOceanApiError && error.kind === 'not-found') {
      throw new DigitalOceanApiError(
        'not-found',
        'preflight',
        `domain ${spec.domain} is not on DigitalOcean DNS: add it (Networking > Domains, or POST /v2/domains) and delegate it to ns1/ns2/ns3.digitalocean.com, then re-run`,
        404,
      );
    }
    throw error;
  }
  const allDroplets = await api.listDroplets();
  const tagged = allDroplets.filter((d) => d.tags.includes(tag));
  const byName = new Map<string, DropletInfo>();
  for (const member of spec.members) {
    const matches = tagged.filter((d) => d.name === member.dropletName);
    if (matches.length > 1) {
      throw new DigitalOceanApiError('unexpected', 'preflight', `${matches.length} droplets named ${member.dropletName} carry tag ${tag} (ids ${matches.map((d) => d.id).join(', ')}); delete the extra ones, then re-run`);
    }
    if (matches[0]) byName.set(member.name, matches[0]);
    const stranger = allDroplets.find((d) => d.name === member.dropletName && !d.tags.includes(tag));
    if (stranger && !matches[0]) {
      throw new DigitalOceanApiError('unexpected', 'preflight', `a droplet named ${member.dropletName} (id ${stranger.id}) exists without tag ${tag}; it is not part of this cluster: rename or delete it, or choose another --cluster-name`);
    }
  }
  const strays = tagged.filter((d) => !spec.members.some((m) => m.dropletName === d.name));
  for (const stray of strays) progress(`note: droplet ${stray.name} (id ${stray.id}) carries ${tag} but is not a member of this plan; left alone`);
  const wrongRegion = [...byName.values()].find((d) => d.region !== undefined && d.region !== spec.region);
  if (wrongRegion) {
    throw new DigitalOceanApiError('invalid', 'preflight', `droplet ${wrongRegion.name} of this cluster is in ${wrongRegion.region}, not --region ${spec.region}; a cluster stays in one region`);
  }
  const missing = spec.members.filter((m) => !byName.has(m.name));
  if (account.dropletLimit !== undefined && allDroplets.length + missing.length > account.dropletLimit) {
    throw new DigitalOceanApiError(
      'invalid',
      'preflight',
      `the account may have ${account.dropletLimit} droplets and has ${allDroplets.length}; ${missing.length} more are needed. Ask DigitalOcean to raise the limit, or delete droplets`,
    );
  }
  for (const [name, droplet] of byName) progress(`${name}: droplet ${droplet.name} exists (id ${droplet.id}, ${droplet.status})`);
  if (byName.size > 0 && missing.length > 0) options.checkResume?.(spec.members.filter((m) => byName.has(m.name)), missing);

  const existing: string[] = [];
  const done = (what: string) => existing.push(what);
  const pending = () => {
    const left: string[] = [];
    for (const m of spec.members) if (!existing.some((e) => e.startsWith(`droplet ${m.dropletName} `))) left.push(`droplet ${m.dropletName}`);
    left.push('DNS records', 'firewall');
    return left;
  };
  for (const droplet of byName.values()) done(`droplet ${droplet.name} (id ${droplet.id})`);

  try {
    // VPC: --vpc-uuid, else the one the existing droplets sit in, else ours by name, else a new one.
    const vpcName = clusterResourceName(spec.clusterName);
    const dropletVpcs = [...new Set([...byName.values()].map((d) => d.vpcUuid).filter((id): id is string => id !== undefined))];
    if (dropletVpcs.length > 1) {
      throw new DigitalOceanApiError('invalid', 'preflight', `the cluster's droplets sit in ${dropletVpcs.length} VPCs (${dropletVpcs.join(', ')}); peers must share one`);
    }
    if (spec.vpcUuid && dropletVpcs[0] && dropletVpcs[0] !== spec.vpcUuid) {
      throw new DigitalOceanApiError('invalid', 'preflight', `the cluster's droplets sit in VPC ${dropletVpcs[0]}, not --vpc-uuid ${spec.vpcUuid}`);
    }
    let vpc: VpcInfo | undefined;
    let vpcOutcome: Outcome = 'unchanged';
    const wantedId = spec.vpcUuid ?? dropletVpcs[0];
    if (wantedId) {
      vpc = await api.getVpc(wantedId);
    } else {
      vpc = (await api.listVpcs()).find((v) => v.name === vpcName);
    }
    if (vpc) {
      if (vpc.region && vpc.region !== spec.region) {
        throw new DigitalOceanApiError('invalid', 'preflight', `VPC ${vpc.name} (${vpc.id}) is in ${vpc.region}, not --region ${spec.region}`);
      }
      if (spec.vpcRange && vpc.ipRange && vpc.ipRange !== spec.vpcRange) {
        progress(`note: VPC ${vpc.name} exists with range ${vpc.ipRange}; --vpc-range ${spec.vpcRange} is ignored`);
      }
      progress(`vpc: using ${vpc.name} (${vpc.id}, ${vpc.ipRange ?? 'range unknown'})`);
    } else {
      const request = {
        name: vpcName,
        region: spec.region,
        description: `${VPC_DESCRIPTION_PREFIX}${spec.clusterName}`,
        ...(spec.vpcRange && { ipRange: spec.vpcRange }),
      };
      if (dryRun) {
        plan({ method: 'POST', path: '/v2/vpcs', body: { name: request.name, region: request.region, description: request.description, ...(request.ipRange && { ip_range: request.ipRange }) } });
        vpcOutcome = 'planned';
      } else {
        vpc = await api.createVpc(request);
        vpcOutcome = 'created';
        done(`VPC ${vpc.name} (${vpc.id})`);
        progress(`vpc: created ${vpc.name} (${vpc.id}, ${vpc.ipRange ?? 'range unknown'})`);
      }
    }
    const vpcResult = {
      id: vpc?.id,
      name: vpc?.name ?? vpcName,
      ipRange: vpc?.ipRange ?? spec.vpcRange,
      outcome: vpcOutcome,
      createdByTool: vpcOutcome !== 'unchanged' || (vpc?.description?.startsWith(VPC_DESCRIPTION_PREFIX) ?? false),
    };

    // Droplets: one create call per member, since each member's user-data is its own.
    const outcomes = new Map<string, Outcome>();
    for (const member of spec.members) {
      if (byName.has(member.name)) {
        outcomes.set(member.name, 'unchanged');
        continue;
      }
      const body = {
        name: member.dropletName,
        region: spec.region,
        size: spec.size,
        image: spec.image,
        ssh_keys: [...spec.sshKeys],
        tags: [tag],
        vpc_uuid: vpc?.id ?? '<id of the new VPC>',
        monitoring: true,
      };
      if (dryRun) {
        plan({ method: 'POST', path: '/v2/droplets', body: { ...body, user_data: `<${options.userDataPath(member)}>` } });
        outcomes.set(member.name, 'planned');
        continue;
      }
      const droplet = await api.createDroplet({
        name: member.dropletName,
        region: spec.region,
        size: spec.size,
        image: spec.image,
        sshKeys: [...spec.sshKeys],
        tags: [tag],
        userData: await options.userData(member),
        vpcUuid: vpc!.id,
        monitoring: true,
      });
      byName.set(member.name, droplet);
      outcomes.set(member.name, 'created');
      done(`droplet ${droplet.name} (id ${droplet.id})`);
      progress(`${member.name}: created droplet ${droplet.name} (id ${droplet.id})`);
    }

    const vpcRange = vpcResult.ipRange;
    const firewall = firewallSpec(spec, vpcRange ?? '<range of the new VPC>');
    if (dryRun) {
      for (const member of spec.members) {
        const droplet = byName.get(member.name);
        plan({ method: 'POST', path: `/v2/domains/${spec.domain}/records`, body: { type: 'A', name: member.dropletName, data: droplet?.privateIpv4 ?? `<private IPv4 of ${member.dropletName}>`, ttl: spec.ttl } });
      }
      const existingFirewall = (await api.listFirewalls()).find((f) => f.name === firewall.name);
      if (existingFirewall) plan({ method: 'PUT', path: `/v2/firewalls/${existingFirewall.id}`, body: wireFirewall(firewall) });
      else plan({ method: 'POST', path: '/v2/firewalls', body: wireFirewall(firewall) });
      return {
        clusterName: spec.clusterName,
        region: spec.region,
        domain: spec.domain,
        tag,
        vpc: vpcResult,
        firewall: { id: existingFirewall?.id, name: firewall.name, outcome: 'planned' },
        members: spec.members.map((m) => {
          const d = byName.get(m.name);
          return { name: m.name, dropletName: m.dropletName, hostname: m.hostname, dropletId: d?.id, droplet: outcomes.get(m.name) ?? 'planned', status: d?.status, privateIpv4: d?.privateIpv4, publicIpv4: d?.publicIpv4, dnsRecord: 'planned' };
        }),
        plannedCalls,
      };
    }

    // Wait, bounded, until every droplet is active and shows its private IPv4.
    const deadline = options.now() + options.waitTimeoutMs;
    const reported = new Set<string>();
    for (;;) {
      const current = await api.listDroplets({ tagName: tag });
      for (const member of spec.members) {
        const droplet = current.find((d) => d.name === member.dropletName);
        if (droplet) byName.set(member.name, droplet);
        if (droplet && isUsable(droplet) && !reported.has(member.name)) {
          reported.add(member.name);
          progress(`${member.name}: active, private ${droplet.privateIpv4}${droplet.publicIpv4 ? `, public ${droplet.publicIpv4}` : ''}`);
        }
      }
      const waiting = spec.members.filter((m) => {
        const d = byName.get(m.name);
        return !d || !isUsable(d);
      });
      if (waiting.length === 0) break;
      if (options.now() >= deadline) {
        throw new DigitalOceanApiError(
          'unexpected',
          'wait for droplets',
          `droplets not active with a private IPv4 after ${Math.round(options.waitTimeoutMs / 1000)} s: ${waiting.map((m) => `${m.dropletName} (${byName.get(m.name)?.status ?? 'missing'})`).join(', ')}`,
        );
      }
      await options.sleep(Math.min(options.pollIntervalMs, Math.max(0, deadline - options.now())));
    }

    // DNS: one A record per member, name relative to the zone, short TTL.
    const records = await api.listDomainRecords(spec.domain);
    const dnsOutcomes = new Map<string, Outcome>();
    for (const member of spec.members) {
      const address = byName.get(member.name)!.privateIpv4!;
      const same: DnsRecord[] = records.filter((r) => r.type === 'A' && r.name === member.dropletName);
      const [first, ...extra] = same;
      let outcome: Outcome;
      if (!first) {
        await api.createARecord(spec.domain, { name: member.dropletName, data: address, ttl: spec.ttl });
        outcome = 'created';
      } else if (first.data !== address || first.ttl !== spec.ttl) {
        await api.updateARecord(spec.domain, first.id, { name: member.dropletName, data: address, ttl: spec.ttl });
        outcome = 'updated';
      } else {
        outcome = 'unchanged';
      }
      // A second A record would hand out a stale address half of the time.
      for (const record of extra) await api.deleteDomainRecord(spec.domain, record.id);
      dnsOutcomes.set(member.name, outcome);
      if (outcome !== 'unchanged') done(`DNS record ${member.hostname}`);
      progress(`${member.name}: DNS ${member.hostname} -> ${address} (${outcome})`);
    }

    // Firewall: ports 2379-2380 from the cluster tag and the VPC only, 22 from --ssh-from.
    const existingFirewall = (await api.listFirewalls()).find((f) => f.name === firewall.name);
    let firewallInfo: FirewallInfo;
    let firewallOutcome: Outcome;
    if (!existingFirewall) {
      firewallInfo = await api.createFirewall(firewall);
      firewallOutcome = 'created';
    } else if (!sameRules(existingFirewall.inbound, firewall.inbound) || !sameRules(existingFirewall.outbound, firewall.outbound) || existingFirewall.tags.join() !== firewall.tags.join()) {
      firewallInfo = await api.updateFirewall(existingFirewall.id, firewall);
      firewallOutcome = 'updated';
    } else {
      firewallInfo = existingFirewall;
      firewallOutcome = 'unchanged';
    }
    progress(`firewall: ${firewall.name} (${firewallInfo.id}) ${firewallOutcome}: 2379-2380 from ${tag} and ${vpcRange}; 22 from ${spec.sshFrom.length > 0 ? spec.sshFrom.join(', ') : 'nowhere'}`);

    return {
      clusterName: spec.clusterName,
      region: spec.region,
      domain: spec.domain,
      tag,
      vpc: vpcResult,
      firewall: { id: firewallInfo.id, name: firewall.name, outcome: firewallOutcome },
      members: spec.members.map((m) => {
        const d = byName.get(m.name)!;
        return {
          name: m.name,
          dropletName: m.dropletName,
          hostname: m.hostname,
          dropletId: d.id,
          droplet: outcomes.get(m.name) ?? 'unchanged',
          status: d.status,
          privateIpv4: d.privateIpv4,
          publicIpv4: d.publicIpv4,
          dnsRecord: dnsOutcomes.get(m.name),
        };
      }),
      plannedCalls,
    };
  } catch (error) {
    if (existing.length > 0 && error instanceof Error) throw new PartialClusterError(error, existing, pending());
    throw error;
  }
}

export interface DestroySpec {
  readonly clusterName: string;
  /** Zones to remove the members' A records from. */
  readonly domains: readonly string[];
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
  const names = new Set([...droplets.map((d) => d.name)]);
  const records: { domain: string; record: DnsRecord }[] = [];
  for (const domain of spec.domains) {
    let all: DnsRecord[];
    try {
      all = await api.listDomainRecords(domain);
    } catch (error) {
      if (error instanceof DigitalOceanApiError && error.kind === 'not-found') continue;
      throw error;
    }
    const prefix = `${spec.clusterName}-`;
    // Our records are named like our droplets; after a partial destroy, like `<cluster>-<member>`.
    for (const record of all) {
      if (record.type === 'A' && (names.has(record.name) || (names.size === 0 && record.name.startsWith(prefix) && !record.name.includes('.')))) {
        records.push({ domain, record });
      }
    }
  }
  const vpcName = clusterResourceName(spec.clusterName);
  const vpc = (await api.listVpcs()).find((v) => v.name === vpcName && (v.description ?? '').startsWith(VPC_DESCRIPTION_PREFIX));
  return { droplets, firewall, records, vpc };
}

export async function destroyDropletCluster(api: DigitalOceanApi, spec: DestroySpec, found: DestroyFindings, options: StepOptions): Promise<PlannedCall[]> {
  const { progress, dryRun } = options;
  const tag = clusterTag(spec.clusterName);
  const calls: PlannedCall[] = [];
  const step = async (call: PlannedCall, what: string, run: () => Promise<void>) => {
    calls.push(call);
    if (dryRun) {
      progress(`[dry-run] ${call.method} ${call.path}`);
      return;
    }
    await run();
    progress(`deleted ${what}`);
  };
  // Names first, so nothing resolves to an address that is about to be reused.
  for (const { domain, record } of found.records) {
    await step({ method: 'DELETE', path: `/v2/domains/${domain}/records/${record.id}` }, `DNS record ${record.name}.${domain}`, () => api.deleteDomainRecord(domain, record.id));
  }
  if (found.droplets.length > 0) {
    await step({ method: 'DELETE', path: `/v2/droplets?tag_name=${tag}` }, `${found.droplets.length} droplet(s) tagged ${tag}: ${found.droplets.map((d) => d.name).join(', ')}`, () => api.deleteDropletsByTag(tag));
  }
  if (found.firewall) {
    const id = found.firewall.id;
    await step({ method: 'DELETE', path: `/v2/firewalls/${id}` }, `firewall ${found.firewall.name}`, () => api.deleteFirewall(id));
  }
  if (found.vpc) {
    const vpc = found.vpc;
    // The platform releases deleted droplets from the VPC a little later: retry the conflict, bounded.
    await step({ method: 'DELETE', path: `/v2/vpcs/${vpc.id}` }, `VPC ${vpc.name}`, async () => {
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
  return calls;
}
