// Narrow typings for the part of @digitalocean/dots 1.19.0 that src/digitalocean/ uses.
// Why: dots ships only .ts sources (no .d.ts), so resolving the real package makes tsc
// type-check ~3 MB of generated code under our strict options (14 errors, +12 s per run).
// tsconfig "paths" points the type checker here; at runtime Node loads the real index.js.
// Shapes are copied from dots' generated models (camelCase, nullable); the fake API tests
// exercise them against the real runtime.

import type { AuthenticationProvider, RequestAdapter, RequestConfiguration, RequestInformation } from '@microsoft/kiota-abstractions';

type Nullable<T> = T | null | undefined;

export interface Network_v4 {
  gateway?: Nullable<string>;
  ipAddress?: Nullable<string>;
  netmask?: Nullable<string>;
  type?: Nullable<'public' | 'private'>;
}
export interface Droplet {
  id?: Nullable<number>;
  name?: Nullable<string>;
  status?: Nullable<'new' | 'active' | 'off' | 'archive'>;
  tags?: Nullable<string[]>;
  vpcUuid?: Nullable<string>;
  networks?: Nullable<{ v4?: Nullable<Network_v4[]> }>;
  region?: Nullable<{ slug?: Nullable<string> }>;
}
export interface Droplet_single_create {
  name: string;
  region: string;
  size: string;
  image: number | string;
  sshKeys?: string[];
  tags?: string[];
  userData?: string;
  vpcUuid?: string;
  ipv6?: boolean;
  monitoring?: boolean;
  withDropletAgent?: boolean;
}
export interface Account {
  dropletLimit?: Nullable<number>;
  email?: Nullable<string>;
  status?: Nullable<string>;
  statusMessage?: Nullable<string>;
  uuid?: Nullable<string>;
}
export interface Vpc {
  id?: Nullable<string>;
  name?: Nullable<string>;
  region?: Nullable<string>;
  ipRange?: Nullable<string>;
  description?: Nullable<string>;
  defaultEscaped?: Nullable<boolean>;
}
export interface VpcsPostRequestBody {
  name: string;
  region: string;
  ipRange?: string;
  description?: string;
}
export interface Domain {
  name?: Nullable<string>;
  ttl?: Nullable<number>;
}
export interface Domain_record {
  id?: Nullable<number>;
  type?: Nullable<string>;
  name?: Nullable<string>;
  data?: Nullable<string>;
  ttl?: Nullable<number>;
  priority?: Nullable<number>;
  port?: Nullable<number>;
  weight?: Nullable<number>;
}
export interface Firewall_rule_target {
  addresses?: Nullable<string[]>;
  dropletIds?: Nullable<number[]>;
  tags?: Nullable<string[]>;
}
export interface Firewall_inbound_rule {
  protocol?: Nullable<'tcp' | 'udp' | 'icmp'>;
  ports?: Nullable<string>;
  sources?: Nullable<Firewall_rule_target>;
}
export interface Firewall_outbound_rule {
  protocol?: Nullable<'tcp' | 'udp' | 'icmp'>;
  ports?: Nullable<string>;
  destinations?: Nullable<Firewall_rule_target>;
}
export interface Firewall {
  id?: Nullable<string>;
  name?: Nullable<string>;
  status?: Nullable<string>;
  tags?: Nullable<string[]>;
  dropletIds?: Nullable<number[]>;
  inboundRules?: Nullable<Firewall_inbound_rule[]>;
  outboundRules?: Nullable<Firewall_outbound_rule[]>;
}
export interface Page_links {
  pages?: Nullable<{ next?: Nullable<string>; last?: Nullable<string> }>;
}
interface Paged {
  links?: Nullable<Page_links>;
  meta?: Nullable<{ total?: Nullable<number> }>;
}
interface PageQuery {
  page?: number;
  perPage?: number;
}

export interface DigitalOceanClient {
  v2: {
    account: { get(config?: RequestConfiguration<object>): Promise<{ account?: Nullable<Account> } | undefined> };
    droplets: {
      get(config?: RequestConfiguration<PageQuery & { tagName?: string; name?: string }>): Promise<(Paged & { droplets?: Nullable<Droplet[]> }) | undefined>;
      post(body: Droplet_single_create): Promise<{ droplet?: Nullable<Droplet>; droplets?: Nullable<Droplet[]> } | undefined>;
      toPostRequestInformation(body: Droplet_single_create): RequestInformation;
      delete(config: RequestConfiguration<{ tagName: string }>): Promise<void>;
      toDeleteRequestInformation(config: RequestConfiguration<{ tagName: string }>): RequestInformation;
      byDroplet_id(id: number): {
        get(): Promise<{ droplet?: Nullable<Droplet> } | undefined>;
        delete(): Promise<void>;
        toDeleteRequestInformation(): RequestInformation;
      };
    };
    vpcs: {
      get(config?: RequestConfiguration<PageQuery>): Promise<(Paged & { vpcs?: Nullable<Vpc[]> }) | undefined>;
      post(body: VpcsPostRequestBody): Promise<{ vpc?: Nullable<Vpc> } | undefined>;
      toPostRequestInformation(body: VpcsPostRequestBody): RequestInformation;
      byVpc_id(id: string): {
        get(): Promise<{ vpc?: Nullable<Vpc> } | undefined>;
        delete(): Promise<void>;
        toDeleteRequestInformation(): RequestInformation;
      };
    };
    domains: {
      byDomain_name(name: string): {
        get(): Promise<{ domain?: Nullable<Domain> } | undefined>;
        records: {
          get(config?: RequestConfiguration<PageQuery & { name?: string }>): Promise<(Paged & { domainRecords?: Nullable<Domain_record[]> }) | undefined>;
          post(body: Domain_record & { type: 'A' | 'SRV'; name: string; data: string }): Promise<{ domainRecord?: Nullable<Domain_record> } | undefined>;
          toPostRequestInformation(body: Domain_record & { type: 'A' | 'SRV'; name: string; data: string }): RequestInformation;
          byDomain_record_id(id: number): {
            put(body: Domain_record & { type: string }): Promise<{ domainRecord?: Nullable<Domain_record> } | undefined>;
            toPutRequestInformation(body: Domain_record & { type: string }): RequestInformation;
            delete(): Promise<void>;
            toDeleteRequestInformation(): RequestInformation;
          };
        };
      };
    };
    firewalls: {
      get(config?: RequestConfiguration<PageQuery>): Promise<(Paged & { firewalls?: Nullable<Firewall[]> }) | undefined>;
      post(body: Firewall): Promise<{ firewall?: Nullable<Firewall> } | undefined>;
      toPostRequestInformation(body: Firewall): RequestInformation;
      byFirewall_id(id: string): {
        get(): Promise<{ firewall?: Nullable<Firewall> } | undefined>;
        put(body: Firewall): Promise<{ firewall?: Nullable<Firewall> } | undefined>;
        toPutRequestInformation(body: Firewall): RequestInformation;
        delete(): Promise<void>;
        toDeleteRequestInformation(): RequestInformation;
      };
    };
  };
}

export function createDigitalOceanClient(requestAdapter: RequestAdapter): DigitalOceanClient;

export class DigitalOceanApiKeyAuthenticationProvider implements AuthenticationProvider {
  constructor(apiKey: string);
  authenticateRequest(request: import('@microsoft/kiota-abstractions').RequestInformation, additionalAuthenticationContext?: Record<string, unknown>): Promise<void>;
}
