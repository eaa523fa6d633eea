// Our terms for the DigitalOcean API: what the rest of the code passes and gets back.
// Nothing here knows dots or kiota (client.ts maps to and from them).

export interface DigitalOceanConfig {
  token: string;
  apiUrl: string;
}

export interface DropletInfo {
  id: number;
  name: string;
  status: string;
  tags: string[];
  region?: string;
  vpcUuid?: string;
  privateIpv4?: string;
  publicIpv4?: string;
}

/**
 * User-data read only when a droplet is really created: producing it may mint the PKI and
 * write out/, which a dry run must not do; a dry run shows `path` instead.
 */
export interface UserDataSource {
  /** Where the text lives, as the user should see it (out/<cluster>/user-data/<member>.yaml). */
  readonly path: string;
  readonly read: () => Promise<string>;
}

export interface DropletCreateRequest {
  name: string;
  region: string;
  size: string;
  /** A distribution/app slug, or a numeric snapshot/image id. */
  image: string | number;
  sshKeys: string[];
  tags: string[];
  /** The text, or where it lives and how to read it when (and only if) the droplet is created. */
  userData: string | UserDataSource;
  vpcUuid: string;
  monitoring: boolean;
}

export interface VpcInfo {
  id: string;
  name: string;
  region?: string;
  ipRange?: string;
  description?: string;
}

export interface VpcCreateRequest {
  name: string;
  region: string;
  ipRange?: string;
  description: string;
}

export interface DnsRecord {
  id: number;
  type: string;
  name: string;
  data: string;
  ttl?: number;
  /** SRV only. */
  port?: number;
}

/** An SRV record (priority and weight 0), its name relative to the zone; `target` is a host name. */
export interface SrvRecordRequest {
  name: string;
  target: string;
  port: number;
  ttl: number;
}

/** An A record, its name relative to the zone. */
export interface ARecordRequest {
  name: string;
  data: string;
  ttl: number;
}

export interface FirewallRuleTarget {
  addresses?: string[];
  tags?: string[];
  dropletIds?: number[];
}

export interface FirewallRule {
  protocol: 'tcp' | 'udp' | 'icmp';
  ports: string;
  targets: FirewallRuleTarget;
}

export interface FirewallSpec {
  name: string;
  tags: string[];
  inbound: FirewallRule[];
  outbound: FirewallRule[];
}

export interface FirewallInfo {
  id: string;
  name: string;
  tags: string[];
  dropletIds: number[];
  inbound: FirewallRule[];
  outbound: FirewallRule[];
}

export interface AccountInfo {
  dropletLimit?: number;
  status?: string;
  statusMessage?: string;
}

/** Every DigitalOcean call the commands make. */
export interface DigitalOceanApi {
  readonly apiUrl: string;
  getAccount(): Promise<AccountInfo>;
  listDroplets(filter?: { tagName?: string }): Promise<DropletInfo[]>;
  getDroplet(id: number): Promise<DropletInfo>;
  createDroplet(request: DropletCreateRequest): Promise<DropletInfo>;
  /** A droplet that is already gone fails with kind 'not-found'. */
  deleteDroplet(id: number): Promise<void>;
  deleteDropletsByTag(tagName: string): Promise<void>;
  listVpcs(): Promise<VpcInfo[]>;
  getVpc(id: string): Promise<VpcInfo>;
  createVpc(request: VpcCreateRequest): Promise<VpcInfo>;
  deleteVpc(id: string): Promise<void>;
  getDomain(name: string): Promise<{ name: string }>;
  listDomainRecords(domain: string): Promise<DnsRecord[]>;
  createARecord(domain: string, record: ARecordRequest): Promise<DnsRecord>;
  createSrvRecord(domain: string, record: SrvRecordRequest): Promise<DnsRecord>;
  updateARecord(domain: string, id: number, record: ARecordRequest): Promise<DnsRecord>;
  deleteDomainRecord(domain: string, id: number): Promise<void>;
  listFirewalls(): Promise<FirewallInfo[]>;
  createFirewall(spec: FirewallSpec): Promise<FirewallInfo>;
  updateFirewall(id: string, spec: FirewallSpec): Promise<FirewallInfo>;
  deleteFirewall(id: string): Promise<void>;
}

/** The calls that change something: a dry run records these instead of sending them. */
export type ChangingCall =
  | 'createDroplet'
  | 'deleteDroplet'
  | 'deleteDropletsByTag'
  | 'createVpc'
  | 'deleteVpc'
  | 'createARecord'
  | 'createSrvRecord'
  | 'updateARecord'
  | 'deleteDomainRecord'
  | 'createFirewall'
  | 'updateFirewall'
  | 'deleteFirewall';
