// Dry run as a wrapper, not a branch (kubeadm's apiclient/dryrun.go): reads go to the real
// API; each changing call is recorded and printed as the request dots would send, and answered
// with a stand-in, so the flow runs its one path and changes nothing.
import { DigitalOceanApiError } from './errors.js';
import { describeChanges, type PlannedCall } from './requests.js';
import type { DigitalOceanApi, DropletInfo } from './types.js';

export type { PlannedCall } from './requests.js';

export interface RecordingApi extends DigitalOceanApi {
  /** Every changing call so far, in order. */
  readonly plannedCalls: readonly PlannedCall[];
}

/** The calls a dry run recorded; a real API has none. */
export const plannedCallsOf = (api: DigitalOceanApi): readonly PlannedCall[] => ('plannedCalls' in api ? (api as RecordingApi).plannedCalls : []);

export function recordingApi(real: DigitalOceanApi, progress: (line: string) => void): RecordingApi {
  const describe = describeChanges();
  const plannedCalls: PlannedCall[] = [];
  const plan = (call: PlannedCall) => {
    plannedCalls.push(call);
    progress(`[dry-run] ${call.method} ${call.path}${call.body ? ` ${JSON.stringify(call.body)}` : ''}`);
  };

  // Droplets are what flows read back after a change (they wait for them): planned ones are
  // active at once, in later reads too, so a wait ends at once; deleted ones are gone.
  const plannedDroplets = new Map<number, DropletInfo>();
  const deletedIds = new Set<number>();
  const deletedTags = new Set<string>();
  const visible = (droplet: DropletInfo) => !deletedIds.has(droplet.id) && !droplet.tags.some((tag) => deletedTags.has(tag));
  // Stand-in ids are negative: no real droplet or record has one.
  let lastId = 0;

  return {
    apiUrl: real.apiUrl,
    plannedCalls,

    getAccount: () => real.getAccount(),
    async listDroplets(filter = {}) {
      const planned = [...plannedDroplets.values()].filter((d) => !filter.tagName || d.tags.includes(filter.tagName));
      return [...(await real.listDroplets(filter)), ...planned].filter(visible);
    },
    async getDroplet(id) {
      const droplet = plannedDroplets.get(id) ?? (await real.getDroplet(id));
      if (!visible(droplet)) throw new DigitalOceanApiError('not-found', `read droplet ${id}`, `read droplet ${id}: not found (deleted in this dry run)`, 404);
      return droplet;
    },
    listVpcs: () => real.listVpcs(),
    getVpc: (id) => real.getVpc(id),
    getDomain: (name) => real.getDomain(name),
    listDomainRecords: (domain) => real.listDomainRecords(domain),
    listFirewalls: () => real.listFirewalls(),

    async createDroplet(request) {
      plan(describe.createDroplet(request));
      const droplet = { id: --lastId, name: request.name, status: 'active', tags: request.tags, region: request.region, vpcUuid: request.vpcUuid, privateIpv4: `<private IPv4 of ${request.name}>` };
      plannedDroplets.set(droplet.id, droplet);
      return droplet;
    },
    async deleteDroplet(id) {
      plan(describe.deleteDroplet(id));
      deletedIds.add(id);
    },
    async deleteDropletsByTag(tagName) {
      plan(describe.deleteDropletsByTag(tagName));
      deletedTags.add(tagName);
    },
    async createVpc(request) {
      plan(describe.createVpc(request));
      return { id: '<id of the new VPC>', name: request.name, region: request.region, ipRange: request.ipRange ?? '<range of the new VPC>', description: request.description };
    },
    async deleteVpc(id) {
      plan(describe.deleteVpc(id));
    },
    async createARecord(domain, record) {
      plan(describe.createARecord(domain, record));
      return { id: --lastId, type: 'A', ...record };
    },
    async createSrvRecord(domain, record) {
      plan(describe.createSrvRecord(domain, record));
      return { id: --lastId, type: 'SRV', name: record.name, data: `${record.target}.`, port: record.port, ttl: record.ttl };
    },
    async updateARecord(domain, id, record) {
      plan(describe.updateARecord(domain, id, record));
      return { id, type: 'A', ...record };
    },
    async deleteDomainRecord(domain, id) {
      plan(describe.deleteDomainRecord(domain, id));
    },
    async createFirewall(spec) {
      plan(describe.createFirewall(spec));
      return { id: '<id of the new firewall>', dropletIds: [], ...spec };
    },
    async updateFirewall(id, spec) {
      plan(describe.updateFirewall(id, spec));
      return { id, dropletIds: [], ...spec };
    },
    async deleteFirewall(id) {
      plan(describe.deleteFirewall(id));
    },
  };
}
