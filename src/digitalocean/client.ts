// The only module that imports @digitalocean/dots and kiota: the rest of the code speaks
// DigitalOceanApi (our types) and DigitalOceanApiError.
import {
  createDigitalOceanClient,
  DigitalOceanApiKeyAuthenticationProvider,
  type DigitalOceanClient,
  type Droplet,
  type Firewall,
  type Firewall_rule_target,
  type Page_links,
} from '@digitalocean/dots';
import {
  FetchRequestAdapter,
  HttpClient,
  ParametersNameDecodingHandler,
  RedirectHandler,
  type Middleware,
} from '@microsoft/kiota-http-fetchlibrary';
import type { RequestOption } from '@microsoft/kiota-abstractions';

export const DEFAULT_API_URL = 'https://api.digitalocean.com';

export interface DigitalOceanConfig {
  token: string;
  apiUrl: string;
}

export type DigitalOceanErrorKind =
  | 'config'
  | 'auth'
  | 'forbidden'
  | 'not-found'
  | 'invalid'
  | 'rate-limit'
  | 'server'
  | 'network'
  | 'unexpected';

/** A failed API call, with a message a user can act on; never carries the token. */
export class DigitalOceanApiError extends Error {
  constructor(
    readonly kind: DigitalOceanErrorKind,
    readonly operation: string,
    message: string,
    readonly status?: number,
    readonly apiErrorId?: string,
  ) {
    super(message);
    this.name = 'DigitalOceanApiError';
  }
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

export interface DropletCreateRequest {
  name: string;
  region: string;
  size: string;
  /** A distribution/app slug, or a numeric snapshot/image id. */
  image: string | number;
  sshKeys: string[];
  tags: string[];
  userData: string;
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
}

export interface FirewallRuleTarget {
  addresses?: string[];
  tags?: string[];
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

/** Every DigitalOcean call create-droplets / destroy-droplets make. */
export interface DigitalOceanApi {
  readonly apiUrl: string;
  getAccount(): Promise<AccountInfo>;
  listDroplets(filter?: { tagName?: string }): Promise<DropletInfo[]>;
  getDroplet(id: number): Promise<DropletInfo>;
  createDroplet(request: DropletCreateRequest): Promise<DropletInfo>;
  deleteDropletsByTag(tagName: string): Promise<void>;
  listVpcs(): Promise<VpcInfo[]>;
  getVpc(id: string): Promise<VpcInfo>;
  createVpc(request: VpcCreateRequest): Promise<VpcInfo>;
  deleteVpc(id: string): Promise<void>;
  getDomain(name: string): Promise<{ name: string }>;
  listDomainRecords(domain: string): Promise<DnsRecord[]>;
  createARecord(domain: string, record: { name: string; data: string; ttl: number }): Promise<DnsRecord>;
  updateARecord(domain: string, id: number, record: { name: string; data: string; ttl: number }): Promise<DnsRecord>;
  deleteDomainRecord(domain: string, id: number): Promise<void>;
  listFirewalls(): Promise<FirewallInfo[]>;
  createFirewall(spec: FirewallSpec): Promise<FirewallInfo>;
  updateFirewall(id: string, spec: FirewallSpec): Promise<FirewallInfo>;
  deleteFirewall(id: string): Promise<void>;
}

export interface ClientOptions {
  /** Abort one HTTP exchange after this long (default 30 s). */
  requestTimeoutMs?: number;
  /** Retries of a rate-limited (429) or unavailable (502-504, GET only) response (default 5). */
  maxRetries?: number;
  /** Give up instead of waiting when Retry-After asks for longer than this (default 60 s). */
  maxRetryWaitSeconds?: number;
  /** Told before each wait, so the command can print a progress line. */
  onRetry?: (info: { status: number; waitSeconds: number; attempt: number }) => void;
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
}

/** Token and API URL from the environment (a parameter, never process.env read here). */
export function resolveDigitalOceanConfig(env: Readonly<Record<string, string | undefined>>): DigitalOceanConfig {
  const token = (env['DIGITALOCEAN_TOKEN'] || env['DIGITALOCEAN_ACCESS_TOKEN'] || '').trim();
  if (token === '') {
    throw new DigitalOceanApiError(
      'config',
      'read credentials',
      'no DigitalOcean API token: set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN) to a token with write scope',
    );
  }
  const rawUrl = (env['DIGITALOCEAN_API_URL'] || DEFAULT_API_URL).trim();
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new DigitalOceanApiError('config', 'read credentials', `DIGITALOCEAN_API_URL is not a URL: ${JSON.stringify(rawUrl)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new DigitalOceanApiError('config', 'read credentials', `DIGITALOCEAN_API_URL must be http(s): ${JSON.stringify(rawUrl)}`);
  }
  return { token, apiUrl: rawUrl.replace(/\/+$/, '') };
}

const PER_PAGE = 200;
// 50 pages of 200 is far beyond any account this tool should touch; the bound stops a loop
// on a server that keeps answering "next".
const MAX_PAGES = 50;

export function createDigitalOceanApi(config: DigitalOceanConfig, options: ClientOptions = {}): DigitalOceanApi {
  const client = buildClient(config, options);
  const call = <T>(operation: string, fn: () => Promise<T>): Promise<T> =>
    fn().catch((error: unknown) => {
      throw toApiError(operation, error, config.apiUrl);
    });

  async function paged<R extends { links?: Page_links | null }, T>(
    operation: string,
    fetchPage: (query: { page: number; perPage: number }) => Promise<R | undefined>,
    items: (response: R) => T[] | null | undefined,
  ): Promise<T[]> {
    const all: T[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const response = await call(operation, () => fetchPage({ page, perPage: PER_PAGE }));
      const batch = response ? (items(response) ?? []) : [];
      all.push(...batch);
      if (!response?.links?.pages?.next || batch.length === 0) return all;
    }
    throw new DigitalOceanApiError('unexpected', operation, `${operation}: more than ${MAX_PAGES} pages; refusing to continue`);
  }

  const required = <T>(operation: string, value: T | null | undefined): T => {
    if (value === null || value === undefined) {
      throw new DigitalOceanApiError('unexpected', operation, `${operation}: the API response has no body`);
    }
    return value;
  };

  return {
    apiUrl: config.apiUrl,

    async getAccount() {
      const response = await call('read account', () => client.v2.account.get());
      const account = required('read account', response?.account);
      return {
        ...(account.dropletLimit != null && { dropletLimit: account.dropletLimit }),
        ...(account.status != null && { status: account.status }),
        ...(account.statusMessage != null && { statusMessage: account.statusMessage }),
      };
    },

    async listDroplets(filter = {}) {
      const droplets = await paged(
        'list droplets',
        (q) => client.v2.droplets.get({ queryParameters: { ...q, ...(filter.tagName && { tagName: filter.tagName }) } }),
        (r) => r.droplets,
      );
      return droplets.map(toDropletInfo);
    },

    async getDroplet(id) {
      const response = await call(`read droplet ${id}`, () => client.v2.droplets.byDroplet_id(id).get());
      return toDropletInfo(required(`read droplet ${id}`, response?.droplet));
    },

    async createDroplet(request) {
      const operation = `create droplet ${request.name}`;
      const response = await call(operation, () =>
        client.v2.droplets.post({
          name: request.name,
          region: request.region,
          size: request.size,
          image: request.image,
          sshKeys: request.sshKeys,
          tags: request.tags,
          userData: request.userData,
          vpcUuid: request.vpcUuid,
          monitoring: request.monitoring,
        }),
      );
      return toDropletInfo(required(operation, response?.droplet ?? response?.droplets?.[0]));
    },

    async deleteDropletsByTag(tagName) {
      await call(`delete droplets tagged ${tagName}`, () => client.v2.droplets.delete({ queryParameters: { tagName } }));
    },

    async listVpcs() {
      const vpcs = await paged('list VPCs', (q) => client.v2.vpcs.get({ queryParameters: q }), (r) => r.vpcs);
      return vpcs.flatMap((vpc) => (vpc.id ? [toVpcInfo({ ...vpc, id: vpc.id })] : []));
    },

    async getVpc(id) {
      const response = await call(`read VPC ${id}`, () => client.v2.vpcs.byVpc_id(id).get());
      const vpc = required(`read VPC ${id}`, response?.vpc);
      return toVpcInfo({ ...vpc, id: vpc.id ?? id });
    },

    async createVpc(request) {
      const operation = `create VPC ${request.name}`;
      const response = await call(operation, () =>
        client.v2.vpcs.post({
          name: request.name,
          region: request.region,
          description: request.description,
          ...(request.ipRange && { ipRange: request.ipRange }),
        }),
      );
      const vpc = required(operation, response?.vpc);
      return toVpcInfo({ ...vpc, id: required(operation, vpc.id) });
    },

    async deleteVpc(id) {
      await call(`delete VPC ${id}`, () => client.v2.vpcs.byVpc_id(id).delete());
    },

    async getDomain(name) {
      const response = await call(`read domain ${name}`, () => client.v2.domains.byDomain_name(name).get());
      return { name: required(`read domain ${name}`, response?.domain)?.name ?? name };
    },

    async listDomainRecords(domain) {
      const records = await paged(
        `list DNS records of ${domain}`,
        (q) => client.v2.domains.byDomain_name(domain).records.get({ queryParameters: q }),
        (r) => r.domainRecords,
      );
      return records.flatMap((r) =>
        r.id != null && r.type && r.name != null
          ? [{ id: r.id, type: r.type, name: r.name, data: r.data ?? '', ...(r.ttl != null && { ttl: r.ttl }) }]
          : [],
      );
    },

    async createARecord(domain, record) {
      const operation = `create DNS record ${record.name}.${domain}`;
      const response = await call(operation, () =>
        client.v2.domains.byDomain_name(domain).records.post({ type: 'A', name: record.name, data: record.data, ttl: record.ttl }),
      );
      return toDnsRecord(operation, response?.domainRecord);
    },

    async updateARecord(domain, id, record) {
      const operation = `update DNS record ${record.name}.${domain}`;
      // The published spec requires `type` on an update even though it cannot change.
      const response = await call(operation, () =>
        client.v2.domains
          .byDomain_name(domain)
          .records.byDomain_record_id(id)
          .put({ type: 'A', name: record.name, data: record.data, ttl: record.ttl }),
      );
      return toDnsRecord(operation, response?.domainRecord);
    },

    async deleteDomainRecord(domain, id) {
      await call(`delete DNS record ${id} of ${domain}`, () =>
        client.v2.domains.byDomain_name(domain).records.byDomain_record_id(id).delete(),
      );
    },

    async listFirewalls() {
      const firewalls = await paged('list firewalls', (q) => client.v2.firewalls.get({ queryParameters: q }), (r) => r.firewalls);
      return firewalls.flatMap((f) => (f.id ? [toFirewallInfo({ ...f, id: f.id })] : []));
    },

    async createFirewall(spec) {
      const operation = `create firewall ${spec.name}`;
      const response = await call(operation, () => client.v2.firewalls.post(firewallBody(spec)));
      const firewall = required(operation, response?.firewall);
      return toFirewallInfo({ ...firewall, id: required(operation, firewall.id) });
    },

    async updateFirewall(id, spec) {
      const operation = `update firewall ${spec.name}`;
      // PUT replaces the whole firewall: every rule and tag is sent.
      const response = await call(operation, () => client.v2.firewalls.byFirewall_id(id).put(firewallBody(spec)));
      const firewall = required(operation, response?.firewall);
      return toFirewallInfo({ ...firewall, id: firewall.id ?? id });
    },

    async deleteFirewall(id) {
      await call(`delete firewall ${id}`, () => client.v2.firewalls.byFirewall_id(id).delete());
    },
  };
}

function buildClient(config: DigitalOceanConfig, options: ClientOptions): DigitalOceanClient {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const baseFetch = options.fetch ?? fetch;
  const fetchWithTimeout = (url: string, init: RequestInit): Promise<Response> =>
    baseFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const middlewares: Middleware[] = [
    new RateLimitRetryHandler(options),
    new RedirectHandler(),
    new ParametersNameDecodingHandler(),
    // HttpClient appends a CustomFetchHandler(fetchWithTimeout) as the last link.
  ];
  const httpClient = new HttpClient(fetchWithTimeout, ...middlewares);
  const adapter = new FetchRequestAdapter(
    new DigitalOceanApiKeyAuthenticationProvider(config.token),
    undefined,
    undefined,
    httpClient,
  );
  adapter.baseUrl = config.apiUrl;
  return createDigitalOceanClient(adapter);
}

/**
 * Retries 429 (the request was not processed, safe for any method) and 502-504 on GET only:
 * a POST that timed out at the gateway may have created a droplet, and a blind retry would
 * create a second one. Waits honour Retry-After, and each wait and the count are bounded.
 */
class RateLimitRetryHandler implements Middleware {
  next: Middleware | undefined;
  private readonly maxRetries: number;
  private readonly maxWaitSeconds: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: ClientOptions) {
    this.maxRetries = options.maxRetries ?? 5;
    this.maxWaitSeconds = options.maxRetryWaitSeconds ?? 60;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async execute(url: string, requestInit: RequestInit, requestOptions?: Record<string, RequestOption>): Promise<Response> {
    if (!this.next) throw new Error('RateLimitRetryHandler needs a next middleware');
    for (let attempt = 0; ; attempt++) {
      const response = await this.next.execute(url, requestInit, requestOptions);
      const method = (requestInit.method ?? 'GET').toUpperCase();
      const retryable = response.status === 429 || (method === 'GET' && [502, 503, 504].includes(response.status));
      if (!retryable || attempt >= this.maxRetries) return response;
      const waitSeconds = retryAfterSeconds(response.headers.get('retry-after')) ?? Math.min(2 ** attempt, this.maxWaitSeconds);
      if (waitSeconds > this.maxWaitSeconds) return response;
      await response.body?.cancel();
      this.options.onRetry?.({ status: response.status, waitSeconds, attempt: attempt + 1 });
      await this.sleep(waitSeconds * 1000);
    }
  }
}

function retryAfterSeconds(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function toDropletInfo(droplet: Droplet): DropletInfo {
  const v4 = droplet.networks?.v4 ?? [];
  const address = (type: 'private' | 'public') => v4.find((n) => n.type === type && n.ipAddress)?.ipAddress ?? undefined;
  const privateIpv4 = address('private');
  const publicIpv4 = address('public');
  if (droplet.id == null || !droplet.name) {
    throw new DigitalOceanApiError('unexpected', 'read droplet', 'the API returned a droplet without id or name');
  }
  return {
    id: droplet.id,
    name: droplet.name,
    status: droplet.status ?? 'unknown',
    tags: droplet.tags ?? [],
    ...(droplet.region?.slug && { region: droplet.region.slug }),
    ...(droplet.vpcUuid && { vpcUuid: droplet.vpcUuid }),
    ...(privateIpv4 && { privateIpv4 }),
    ...(publicIpv4 && { publicIpv4 }),
  };
}

function toVpcInfo(vpc: { id: string; name?: string | null; region?: string | null; ipRange?: string | null; description?: string | null }): VpcInfo {
  return {
    id: vpc.id,
    name: vpc.name ?? '',
    ...(vpc.region && { region: vpc.region }),
    ...(vpc.ipRange && { ipRange: vpc.ipRange }),
    ...(vpc.description && { description: vpc.description }),
  };
}

function toDnsRecord(
  operation: string,
  record: { id?: number | null; type?: string | null; name?: string | null; data?: string | null; ttl?: number | null } | null | undefined,
): DnsRecord {
  if (!record || record.id == null) {
    throw new DigitalOceanApiError('unexpected', operation, `${operation}: the API response has no record id`);
  }
  return {
    id: record.id,
    type: record.type ?? 'A',
    name: record.name ?? '',
    data: record.data ?? '',
    ...(record.ttl != null && { ttl: record.ttl }),
  };
}

function firewallBody(spec: FirewallSpec): Firewall {
  return {
    name: spec.name,
    tags: spec.tags,
    inboundRules: spec.inbound.map((rule) => ({ protocol: rule.protocol, ports: rule.ports, sources: rule.targets })),
    outboundRules: spec.outbound.map((rule) => ({ protocol: rule.protocol, ports: rule.ports, destinations: rule.targets })),
  };
}

function toRule(protocol: string | null | undefined, ports: string | null | undefined, target: Firewall_rule_target | null | undefined): FirewallRule {
  return {
    protocol: (protocol ?? 'tcp') as FirewallRule['protocol'],
    ports: ports ?? '',
    targets: {
      ...(target?.addresses?.length && { addresses: target.addresses }),
      ...(target?.tags?.length && { tags: target.tags }),
    },
  };
}

function toFirewallInfo(firewall: Firewall & { id: string }): FirewallInfo {
  return {
    id: firewall.id,
    name: firewall.name ?? '',
    tags: firewall.tags ?? [],
    dropletIds: firewall.dropletIds ?? [],
    inbound: (firewall.inboundRules ?? []).map((rule) => toRule(rule.protocol, rule.ports, rule.sources)),
    outbound: (firewall.outboundRules ?? []).map((rule) => toRule(rule.protocol, rule.ports, rule.destinations)),
  };
}

/** dots throws plain objects ({responseStatusCode, messageEscaped, id}); fetch throws TypeError. */
export function toApiError(operation: string, error: unknown, apiUrl: string): DigitalOceanApiError {
  if (error instanceof DigitalOceanApiError) return error;
  if (typeof error === 'object' && error !== null && typeof (error as { responseStatusCode?: unknown }).responseStatusCode === 'number') {
    const e = error as { responseStatusCode: number; messageEscaped?: unknown; message?: unknown; id?: unknown; responseHeaders?: unknown };
    const status = e.responseStatusCode;
    const apiMessage = typeof e.messageEscaped === 'string' && e.messageEscaped !== '' ? e.messageEscaped : undefined;
    const apiId = typeof e.id === 'string' && e.id !== '' ? e.id : undefined;
    const said = apiMessage ? `: ${apiMessage}` : '';
    const retryAfter = retryAfterFromHeaders(e.responseHeaders);
    switch (true) {
      case status === 401:
        return new DigitalOceanApiError('auth', operation, `${operation}: DigitalOcean rejected the API token (401${said}); check DIGITALOCEAN_TOKEN`, status, apiId);
      case status === 403:
        return new DigitalOceanApiError('forbidden', operation, `${operation}: the API token lacks permission (403${said}); it needs read and write scope`, status, apiId);
      case status === 404:
        return new DigitalOceanApiError('not-found', operation, `${operation}: not found (404${said})`, status, apiId);
      case status === 422 || status === 400:
        return new DigitalOceanApiError('invalid', operation, `${operation}: DigitalOcean refused the request (${status}${said})`, status, apiId);
      case status === 429:
        return new DigitalOceanApiError(
          'rate-limit',
          operation,
          `${operation}: rate limited by DigitalOcean (429${said})${retryAfter ? `; it asks to retry after ${retryAfter} s` : ''}. Wait and re-run the same command: it resumes`,
          status,
          apiId,
        );
      case status >= 500:
        return new DigitalOceanApiError('server', operation, `${operation}: DigitalOcean API error ${status}${said}; re-run the same command later: it resumes`, status, apiId);
      default:
        return new DigitalOceanApiError('unexpected', operation, `${operation}: unexpected HTTP ${status}${said}`, status, apiId);
    }
  }
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
    if (error.name === 'TimeoutError' || error.name === 'AbortError') {
      return new DigitalOceanApiError('network', operation, `${operation}: no answer from ${apiUrl} in time (request timed out)`);
    }
    if (error instanceof TypeError && /fetch failed|network/i.test(error.message)) {
      const detail = code ?? (cause instanceof Error ? cause.message : error.message);
      return new DigitalOceanApiError('network', operation, `${operation}: cannot reach the DigitalOcean API at ${apiUrl} (${detail})`);
    }
    return new DigitalOceanApiError('unexpected', operation, `${operation}: ${error.message}`);
  }
  return new DigitalOceanApiError('unexpected', operation, `${operation}: ${String(error)}`);
}

function retryAfterFromHeaders(headers: unknown): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (key.toLowerCase() !== 'retry-after') continue;
    const first = value instanceof Set ? [...value][0] : Array.isArray(value) ? value[0] : value;
    return first === undefined ? undefined : String(first);
  }
  return undefined;
}
