// DigitalOcean's part of add-member and remove-member on a cluster create-droplets made: one
// member's droplet and A record, with digitalocean.json kept true after every step.
import type { DigitalOceanState, DropletMemberRecord, DropletSettings } from '../cluster-folder.js';
import { DigitalOceanApiError, isNotFound } from './errors.js';
import type { DigitalOceanApi, DropletCreateRequest, DropletInfo } from './types.js';

export const DEFAULT_SIZE = 's-1vcpu-2gb';
export const DEFAULT_IMAGE = 'ubuntu-24-04-x64';
export const DEFAULT_TTL = 60;
/** Every published spec version accepts droplet names of 2-32 characters of [a-z0-9-]; the A record's name is the same label. */
export const MAX_DROPLET_NAME = 32;

/** `<cluster>-<member>`: a member's droplet name, and its A record's name in the zone. */
export const dropletNameOf = (clusterName: string, memberName: string) => `${clusterName}-${memberName}`;

/** Settings for a new member's droplet: the cluster's own, or (digitalocean.json of 0.1.0) the defaults. */
export function dropletSettingsOf(state: DigitalOceanState): { settings: DropletSettings; recorded: boolean } {
  return state.droplet
    ? { settings: state.droplet, recorded: true }
    : { settings: { size: DEFAULT_SIZE, image: DEFAULT_IMAGE, sshKeys: [], ttl: DEFAULT_TTL }, recorded: false };
}

export interface MemberDropletOptions {
  readonly progress: (line: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly waitTimeoutMs: number;
  readonly pollIntervalMs: number;
  /** Writes digitalocean.json; called after every step that changed something on DigitalOcean. */
  readonly save: (state: DigitalOceanState) => void;
}

type Member = Pick<DropletMemberRecord, 'name' | 'hostname'>;

function withMember(state: DigitalOceanState, record: DropletMemberRecord): DigitalOceanState {
  const others = state.members.filter((member) => member.name !== record.name);
  return { ...state, members: [...others, record] };
}

/** A member of the state file that add-member began but did not finish: no address recorded yet. */
export function unfinishedMember(state: DigitalOceanState, names: readonly string[]): string | undefined {
  return names.find((name) => !state.members.some((member) => member.name === name && member.privateIpv4 !== undefined));
}

/**
 * The member's droplet, created once (found by tag and name on a re-run), active with its
 * private IPv4, and its A record. Each step is recorded in digitalocean.json before the next.
 */
export async function provisionMemberDroplet(
  api: DigitalOceanApi,
  initial: DigitalOceanState,
  member: Member,
  userData: DropletCreateRequest['userData'],
  settings: DropletSettings,
  options: MemberDropletOptions,
): Promise<{ state: DigitalOceanState; droplet: DropletInfo; created: boolean }> {
  let state = initial;
  const dropletName = dropletNameOf(state.clusterName, member.name);
  let droplet = (await api.listDroplets({ tagName: state.tag })).find((candidate) => candidate.name === dropletName);
  const created = droplet === undefined;
  if (!droplet) {
    if (!state.vpc.id) throw new DigitalOceanApiError('unexpected', `create droplet ${dropletName}`, 'digitalocean.json records no VPC id for the cluster');
    droplet = await api.createDroplet({
      name: dropletName,
      region: state.region,
      size: settings.size,
      image: settings.image,
      sshKeys: [...settings.sshKeys],
      tags: [state.tag],
      monitoring: true,
      vpcUuid: state.vpc.id,
      userData,
    });
    options.progress(`${member.name}: created droplet ${droplet.name} (id ${droplet.id})`);
  } else {
    options.progress(`${member.name}: droplet ${droplet.name} exists (id ${droplet.id}, ${droplet.status})`);
  }
  state = withMember(state, { name: member.name, dropletName, hostname: member.hostname, dropletId: droplet.id });
  options.save(state);

  droplet = await waitUntilActive(api, droplet, options);
  const address = droplet.privateIpv4!;
  options.progress(`${member.name}: active, private ${address}`);
  const records = (await api.listDomainRecords(state.domain)).filter((record) => record.type === 'A' && record.name === dropletName);
  const [first, ...extra] = records;
  const wanted = { name: dropletName, data: address, ttl: settings.ttl };
  if (!first) await api.createARecord(state.domain, wanted);
  else if (first.data !== address || first.ttl !== settings.ttl) await api.updateARecord(state.domain, first.id, wanted);
  // A second A record would hand out a stale address half of the time.
  for (const record of extra) await api.deleteDomainRecord(state.domain, record.id);
  options.progress(`${member.name}: DNS ${member.hostname} -> ${address}`);
  state = withMember(state, {
    name: member.name,
    dropletName,
    hostname: member.hostname,
    dropletId: droplet.id,
    privateIpv4: address,
    ...(droplet.publicIpv4 ? { publicIpv4: droplet.publicIpv4 } : {}),
  });
  options.save(state);
  return { state, droplet, created };
}

/** Polls the droplet until it is active with its private IPv4; bounded by waitTimeoutMs. */
async function waitUntilActive(api: DigitalOceanApi, initial: DropletInfo, options: MemberDropletOptions): Promise<DropletInfo> {
  const deadline = options.now() + options.waitTimeoutMs;
  let droplet = initial;
  for (;;) {
    if (droplet.status === 'active' && droplet.privateIpv4 !== undefined) return droplet;
    if (options.now() >= deadline) {
      throw new DigitalOceanApiError('unexpected', 'wait for droplet', `droplet ${droplet.name} not active with a private IPv4 after ${Math.round(options.waitTimeoutMs / 1000)} s (${droplet.status})`);
    }
    await options.sleep(Math.min(options.pollIntervalMs, Math.max(0, deadline - options.now())));
    droplet = await api.getDroplet(droplet.id);
  }
}

/**
 * Deletes the member's A record(s) and droplet (by the recorded id, else by tag and name); what is
 * already gone is fine. digitalocean.json drops the member once both are gone.
 */
export async function retireMemberDroplet(
  api: DigitalOceanApi,
  initial: DigitalOceanState,
  member: Pick<DropletMemberRecord, 'name'>,
  options: Pick<MemberDropletOptions, 'progress' | 'save'>,
): Promise<{ state: DigitalOceanState; dropletId: number | undefined; records: number }> {
  const dropletName = dropletNameOf(initial.clusterName, member.name);
  // Names first, so nothing resolves to an address that is about to be reused.
  const records = (await api.listDomainRecords(initial.domain)).filter((record) => record.type === 'A' && record.name === dropletName);
  for (const record of records) {
    await api.deleteDomainRecord(initial.domain, record.id);
    options.progress(`${member.name}: deleted DNS record ${dropletName}.${initial.domain} (${record.data})`);
  }
  const recorded = initial.members.find((candidate) => candidate.name === member.name)?.dropletId;
  const dropletId = recorded ?? (await api.listDroplets({ tagName: initial.tag })).find((droplet) => droplet.name === dropletName)?.id;
  if (dropletId !== undefined) {
    try {
      await api.deleteDroplet(dropletId);
      options.progress(`${member.name}: deleted droplet ${dropletName} (id ${dropletId})`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      options.progress(`${member.name}: droplet ${dropletName} (id ${dropletId}) was already gone`);
    }
  }
  const state = { ...initial, members: initial.members.filter((candidate) => candidate.name !== member.name) };
  options.save(state);
  return { state, dropletId, records: records.length };
}
