// The stable client name of a create-droplets cluster (issue 29): `<cluster>.<domain>`, whose A
// records are exactly the voting members' private IPv4s, and `_etcd-client-ssl._tcp.<cluster>.<domain>`,
// the SRV records etcd's own clients discover members by (etcdctl --discovery-srv). Clients are
// configured once with the name and never again: rolls, repairs and membership changes keep it true.
import { CLIENT_PORT } from '../plan.js';
import type { DigitalOceanApi, DnsRecord } from './types.js';

/** `<cluster>`: the stable name's A records, relative to the zone. */
export const clientRecordName = (clusterName: string) => clusterName;
/** The SRV name etcd's clients look up for `--discovery-srv <cluster>.<domain>` (client URLs over TLS). */
export const clientSrvRecordName = (clusterName: string) => `_etcd-client-ssl._tcp.${clusterName}`;
/** The stable client name of a cluster in a zone. */
export const clientEndpointName = (clusterName: string, domain: string) => `${clientRecordName(clusterName)}.${domain}`;

/** A voting member as the stable name lists it. */
export interface ListedMember {
  /** `<cluster>-<member>.<domain>`: the SRV target. */
  readonly hostname: string;
  readonly privateIpv4: string;
}

export interface ClientRecordsChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

const isClientRecord = (clusterName: string) => (record: DnsRecord) =>
  (record.type === 'A' && record.name === clientRecordName(clusterName)) || (record.type === 'SRV' && record.name === clientSrvRecordName(clusterName));

/** The stable name's records as they are now. */
export async function clientRecords(api: DigitalOceanApi, domain: string, clusterName: string): Promise<DnsRecord[]> {
  return (await api.listDomainRecords(domain)).filter(isClientRecord(clusterName));
}

/**
 * Makes the stable name list exactly `voters`: new records first, then the stale ones removed,
 * so a client resolving the name in between finds the old and the new members, never fewer than
 * either. Callers pass the voters a learner is not among, and drop a member before removing it.
 */
export async function syncClientRecords(
  api: DigitalOceanApi,
  domain: string,
  clusterName: string,
  voters: readonly ListedMember[],
  ttl: number,
  progress: (line: string) => void,
  /** false: only add what is missing (create-droplets, which does not know members added since). */
  prune = true,
): Promise<ClientRecordsChange> {
  const current = await clientRecords(api, domain, clusterName);
  const name = clientEndpointName(clusterName, domain);
  const wantA = new Set(voters.map((v) => v.privateIpv4));
  const wantSrv = new Set(voters.map((v) => `${v.hostname}.`));
  const added: string[] = [];
  for (const address of wantA) {
    if (current.some((r) => r.type === 'A' && r.data === address)) continue;
    await api.createARecord(domain, { name: clientRecordName(clusterName), data: address, ttl });
    added.push(`A ${address}`);
  }
  for (const voter of voters) {
    if (current.some((r) => r.type === 'SRV' && r.data === `${voter.hostname}.` && r.port === CLIENT_PORT)) continue;
    await api.createSrvRecord(domain, { name: clientSrvRecordName(clusterName), target: voter.hostname, port: CLIENT_PORT, ttl });
    added.push(`SRV ${voter.hostname}:${CLIENT_PORT}`);
  }
  const removed: string[] = [];
  for (const record of prune ? current : []) {
    const stale = record.type === 'A' ? !wantA.has(record.data) : !wantSrv.has(record.data) || record.port !== CLIENT_PORT;
    if (!stale) continue;
    await api.deleteDomainRecord(domain, record.id);
    removed.push(record.type === 'A' ? `A ${record.data}` : `SRV ${record.data.replace(/\.$/, '')}:${record.port ?? '?'}`);
  }
  if (added.length > 0 || removed.length > 0) {
    progress(`client endpoint ${name}: ${[...added.map((a) => `+${a}`), ...removed.map((r) => `-${r}`)].join(', ')}`);
  }
  return { added, removed };
}
