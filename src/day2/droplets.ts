// The machines of a cluster create-droplets made (machines.ts): droplets, their A records and
// digitalocean.json. The DigitalOcean module (and so its SDK) is imported only here, and only when
// a droplet is made or deleted.
import { FOLDER_FILES, type DigitalOceanState, type DropletSettings } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_DROPLET_WAIT_SECONDS, DEFAULT_POLL_SECONDS } from '../defaults.js';
import { CliError, usageError } from '../errors.js';
import { secondsFlagMs, stringFlag, type ParsedOptions } from '../options.js';
import type { MemberPlan } from '../plan.js';
import type { Day2Effects } from './effects.js';
import type { Machines } from './machines.js';
import type { OpenCluster } from './open-cluster.js';
import { MAX_DROPLET_NAME, dropletNameOf, dropletSettingsOf } from '../digitalocean/members.js';


/** A cluster create-droplets made: members' machines are droplets, named and addressed by DigitalOcean. */
export function dropletMachines(cluster: OpenCluster, state: DigitalOceanState, context: CommandContext, effects: Day2Effects, wait: DropletWait): Machines {
  const clusterName = cluster.record.clusterName;
  return {
    managed: true,
    heldNames: state.members.map((member) => member.name),
    domain: state.domain,
    checkName: (name, field, what) => {
      const dropletName = dropletNameOf(clusterName, name);
      if (dropletName.length > MAX_DROPLET_NAME) {
        throw usageError('validate', `${field}: ${what}droplet name ${JSON.stringify(dropletName)} (<cluster-name>-<member>) is longer than ${MAX_DROPLET_NAME} characters${what ? '' : '; use a shorter name'}`);
      }
    },
    checkHostname: (hostname) => {
      if (hostname !== undefined) {
        throw usageError('validate', `hostname: create-droplets made cluster ${clusterName}, so its names are <cluster-name>-<member>.${state.domain} (the droplet's A record); give only --name`);
      }
    },
    unfinished: (requested) => {
      const unfinished = cluster.record.members.find((member) => !state.members.some((droplet) => droplet.name === member.name && droplet.privateIpv4 !== undefined))?.name;
      if (unfinished === undefined || requested === undefined || requested === unfinished) return unfinished;
      throw new CliError('preflight', `member ${unfinished} was added but its droplet is not finished; run add-member --name ${unfinished} to finish it (or remove-member --member ${unfinished}) before adding ${String(requested)}`);
    },
    replacementSettings: (flags) => {
      const size = stringFlag(flags, 'size');
      const image = stringFlag(flags, 'image');
      if (size !== undefined && !/^[a-z0-9-]+$/.test(size)) throw usageError('validate', `size: ${JSON.stringify(size)} is not a droplet size slug (for example s-2vcpu-4gb)`);
      if (image !== undefined && !/^([a-z0-9][a-z0-9.-]*|\d+)$/.test(image)) throw usageError('validate', `image: ${JSON.stringify(image)} is not an image slug or snapshot id`);
      const base = dropletSettingsOf(state).settings;
      return { droplet: { ...base, ...(size !== undefined ? { size } : {}), ...(image !== undefined ? { image: /^\d+$/.test(image) ? Number(image) : image } : {}) } };
    },
    provision: (member, userData, settings, retryAdvice) => provisionDroplet(context, cluster, effects, member, userData(), wait, settings, retryAdvice),
    holds: (name) => state.members.some((member) => member.name === name),
    retire: (name, retryAdvice) => retireDroplet(context, cluster, effects, name, retryAdvice),
    listClients: (voters) => listDropletClients(context, cluster, effects, voters),
    settle: (settings) => {
      if (settings) effects.saveDigitalOceanState({ ...state, droplet: settings });
    },
    bootConsole: (name) => dropletConsole(state.members.find((member) => member.name === name) ?? { dropletName: dropletNameOf(clusterName, name) }),
  };
}

/** Where a droplet shows its boot: the Droplet Console in DigitalOcean's control panel (a root shell through the droplet agent, no SSH key). */
export function dropletConsole(droplet: { readonly dropletName: string; readonly dropletId?: number }): string {
  return `the Droplet Console of droplet ${droplet.dropletName}${droplet.dropletId !== undefined ? ` (id ${droplet.dropletId})` : ''} in DigitalOcean's control panel (Droplets > ${droplet.dropletName} > Access)`;
}

export interface DropletWait {
  readonly waitTimeoutMs: number;
  readonly pollIntervalMs: number;
}

export function dropletWaitOptions(flags: ParsedOptions): DropletWait {
  return {
    waitTimeoutMs: secondsFlagMs(flags, 'wait-timeout', DEFAULT_DROPLET_WAIT_SECONDS, 3600, 'is not a number of seconds from 1 to 3600'),
    pollIntervalMs: secondsFlagMs(flags, 'poll-interval', DEFAULT_POLL_SECONDS, 60, 'is not a number of seconds up to 60'),
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The API client (a recorder in a dry run); the DigitalOcean module loads only now. */
async function connect(context: CommandContext, effects: Day2Effects, progress: (line: string) => void) {
  const { connectDigitalOcean } = await import('../digitalocean/connect.js');
  const { DigitalOceanApiError } = await import('../digitalocean/errors.js');
  return { api: connectDigitalOcean(context.env, progress, effects.dryRun), DigitalOceanApiError };
}

function apiFailure(error: unknown, DigitalOceanApiError: new (...args: never[]) => Error, advice: string): unknown {
  return error instanceof DigitalOceanApiError ? new CliError('api', `${error.message}\n${advice}`) : error;
}

/** Creates (or finds) the member's droplet with its user-data, waits for its address, points its A record at it. */
async function provisionDroplet(
  context: CommandContext,
  cluster: OpenCluster,
  effects: Day2Effects,
  member: MemberPlan,
  userData: string,
  wait: DropletWait,
  /** A roll's new size or image; otherwise the cluster's own settings. */
  settingsOverride?: DropletSettings,
  retryAdvice?: string,
): Promise<string> {
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const { api, DigitalOceanApiError } = await connect(context, effects, progress);
  const { dropletSettingsOf, provisionMemberDroplet } = await import('../digitalocean/members.js');
  const state = cluster.digitalocean!;
  const { settings: recordedSettings, recorded } = dropletSettingsOf(state);
  const settings = settingsOverride ?? recordedSettings;
  if (!recorded && !settingsOverride) progress(`note: ${cluster.folder.shownFile(FOLDER_FILES.digitaloceanJson)} predates recorded droplet settings; the droplet gets size ${settings.size}, image ${settings.image} and no SSH key`);
  try {
    const { droplet } = await provisionMemberDroplet(api, state, { name: member.name, hostname: member.hostname! }, { path: cluster.folder.shownFile(FOLDER_FILES.userData(member.name)), read: async () => userData }, settings, {
      progress,
      sleep,
      now: () => context.now().getTime(),
      ...wait,
      save: (next) => effects.saveDigitalOceanState(next),
    });
    return `droplet ${droplet.name}, id ${droplet.id}, ${member.hostname} -> ${droplet.privateIpv4}`;
  } catch (error) {
    throw apiFailure(error, DigitalOceanApiError, retryAdvice ?? `The member is in the cluster and in cluster.json; re-run add-member --name ${member.name} to finish its droplet, or remove-member --name ${member.name}.`);
  }
}

/** The stable client name's A and SRV records (client-endpoint.ts): exactly the voters that have a droplet address. */
async function listDropletClients(context: CommandContext, cluster: OpenCluster, effects: Day2Effects, voters: readonly string[]): Promise<string | undefined> {
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  // A step may have made a droplet since the folder was opened: its address is in the file now.
  const state = (effects.dryRun ? undefined : cluster.folder.readDigitalOceanState()) ?? cluster.digitalocean!;
  const listed = voters.flatMap((name) => {
    const droplet = state.members.find((member) => member.name === name);
    return droplet?.privateIpv4 !== undefined ? [{ hostname: droplet.hostname, privateIpv4: droplet.privateIpv4 }] : [];
  });
  const { api, DigitalOceanApiError } = await connect(context, effects, progress);
  const { syncClientRecords, clientEndpointName } = await import('../digitalocean/client-endpoint.js');
  try {
    const change = await syncClientRecords(api, state.domain, cluster.record.clusterName, listed, dropletSettingsOf(state).settings.ttl, progress);
    const name = clientEndpointName(cluster.record.clusterName, state.domain);
    return change.added.length + change.removed.length === 0 ? `${name} already lists ${listed.length} member(s)` : `${name} lists ${listed.map((v) => v.hostname).join(', ')}`;
  } catch (error) {
    throw apiFailure(error, DigitalOceanApiError, 'Re-run the same command: it finds the records as they are and finishes them.');
  }
}

/** Deletes the member's A record and droplet; what is already gone is fine. */
async function retireDroplet(context: CommandContext, cluster: OpenCluster, effects: Day2Effects, name: string, retryAdvice?: string): Promise<string> {
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const { api, DigitalOceanApiError } = await connect(context, effects, progress);
  const { retireMemberDroplet } = await import('../digitalocean/members.js');
  try {
    const { dropletId, records } = await retireMemberDroplet(api, cluster.digitalocean!, { name }, { progress, save: (next) => effects.saveDigitalOceanState(next) });
    return `${dropletId !== undefined ? `deleted droplet id ${dropletId}` : 'no droplet left'} and ${records} A record(s)`;
  } catch (error) {
    throw apiFailure(error, DigitalOceanApiError, retryAdvice ?? `Re-run remove-member --member ${name} to finish: it deletes what is left.`);
  }
}
