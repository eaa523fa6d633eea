/**
 * The machines a cluster's members run on: the infrastructure half of a member's life (Cluster
 * API's infrastructure provider), beside the bootstrap half that renders its user-data. Two
 * implementations: the operator boots and destroys machines (operatorMachines, here), or the
 * DigitalOcean droplet API does (dropletMachines, in droplets.ts, for a cluster create-droplets
 * made); provider.ts picks one for a cluster. Day-2 code asks this interface, never which cloud it
 * is: another cloud plugs in here.
 */
import type { DropletSettings } from '../cluster-folder.js';
import { usageError } from '../errors.js';
import { stringFlag, type ParsedOptions } from '../options.js';
import type { MemberPlan } from '../plan.js';

export interface Machines {
  /** Whether the tool boots and deletes the machines (true), or the operator does. */
  readonly managed: boolean;
  /** Names a new member may not take: machines still hold them (a droplet of a member removed by hand). */
  readonly heldNames: readonly string[];
  /** The domain the machines name members in (`<cluster-name>-<member>.<domain>`), when they do; --hostname is refused then. */
  readonly domain: string | undefined;
  /** Refuses a new member's name that no machine could carry (`field` names the flag in the message). */
  checkName(name: string, field: string, what: string): void;
  /** Refuses --hostname when the machines name members themselves. */
  checkHostname(hostname: unknown): void;
  /** A member in cluster.json whose machine an earlier add-member did not finish, to finish first; refuses adding another (`requested`) meanwhile. */
  unfinished(requested: unknown): string | undefined;
  /** What a roll's replacements are created with (--size, --image), recorded in roll.json; refuses flags these machines do not take. */
  replacementSettings(flags: ParsedOptions): { readonly droplet?: DropletSettings };
  /** Boots the member's machine with its user-data (read only when a machine is made); undefined when the operator boots it. The line says what was made. */
  provision(member: MemberPlan, userData: () => string, settings: DropletSettings | undefined, retryAdvice?: string): Promise<string | undefined>;
  /** Whether a machine of this member is still there to delete. */
  holds(name: string): boolean;
  /** Deletes the member's machine (holds(name) was true); the line says what was deleted. */
  retire(name: string, retryAdvice?: string): Promise<string>;
  /**
   * Makes the cluster's stable client name list exactly these voting members (issue 29); the line
   * says what changed, undefined when these machines keep no such name (the operator's DNS).
   * Called with a replacement once it is promoted, and without a member before it is removed.
   */
  listClients(voters: readonly string[]): Promise<string | undefined>;
  /** A roll ended: what its replacements were created with is now the cluster's setting. */
  settle(settings: DropletSettings | undefined): void;
  /** Where the member's machine shows its boot (and a failed cloud-init step) without SSH, in words for the operator. */
  bootConsole(name: string): string;
}

/** The operator boots each member's machine with its user-data and destroys it when it leaves: nothing to call. */
export const operatorMachines: Machines = {
  managed: false,
  heldNames: [],
  domain: undefined,
  checkName: () => undefined,
  checkHostname: () => undefined,
  unfinished: () => undefined,
  replacementSettings: (flags) => {
    const size = stringFlag(flags, 'size');
    const image = stringFlag(flags, 'image');
    if (size !== undefined || image !== undefined) throw usageError('validate', `${size !== undefined ? 'size' : 'image'}: only a cluster create-droplets made has droplets; replace this cluster's machines with your own`);
    return {};
  },
  provision: async () => undefined,
  holds: () => false,
  retire: async (name) => {
    throw new Error(`no machine of ${name} to retire`);
  },
  listClients: async () => undefined,
  settle: () => undefined,
  bootConsole: (name) => `the console of ${name}'s machine (your cloud's or hypervisor's)`,
};
