// The DigitalOcean part of add-member and remove-member, for clusters create-droplets made. The
// DigitalOcean module (and so its SDK) is imported only here, and only for such a cluster.
import { FOLDER_FILES, type DropletSettings } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_DROPLET_WAIT_SECONDS, DEFAULT_POLL_SECONDS } from '../defaults.js';
import { CliError } from '../errors.js';
import { secondsFlagMs, type ParsedOptions } from '../options.js';
import type { MemberPlan } from '../plan.js';
import type { Day2Effects } from './effects.js';
import type { OpenCluster } from './open-cluster.js';

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
export async function provisionDroplet(
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

/** Deletes the member's A record and droplet; what is already gone is fine. */
export async function retireDroplet(context: CommandContext, cluster: OpenCluster, effects: Day2Effects, name: string, retryAdvice?: string): Promise<string> {
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
