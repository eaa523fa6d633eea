import { request, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';

/**
 * The etcd client of the day-2 commands: etcd's JSON gateway (`/v3/...`, the same gRPC services
 * as etcdctl) and `/health`, over mutual TLS with the admin certificate. No dependency beyond
 * node:https; 64-bit integers arrive as JSON strings and stay strings (member IDs exceed 2^53).
 */

export interface ClientTls {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ClientOptions {
  readonly tls: ClientTls;
  readonly timeoutMs: number;
}

/** The certificate the member presented in the TLS handshake. */
export interface ServedCertificate {
  readonly subject: string;
  readonly serialNumber: string;
  readonly validTo: Date;
}

export interface ResponseHeader {
  readonly cluster_id?: string;
  readonly member_id?: string;
  readonly revision?: string;
  readonly raft_term?: string;
}

export interface StatusResponse {
  readonly header?: ResponseHeader;
  readonly version?: string;
  readonly dbSize?: string;
  readonly leader?: string;
  readonly raftIndex?: string;
  readonly raftTerm?: string;
  readonly errors?: readonly string[];
  /** Bytes of the database file in use; the rest (dbSize - dbSizeInUse) is what a defragmentation gives back. */
  readonly dbSizeInUse?: string;
  /** Present (true) only on a learner. */
  readonly isLearner?: boolean;
}

export interface EtcdMember {
  readonly ID: string;
  /** Empty until the member has started and joined (an "unstarted" member). */
  readonly name?: string;
  readonly peerURLs?: readonly string[];
  readonly clientURLs?: readonly string[];
  readonly isLearner?: boolean;
}

export interface MemberListResponse {
  readonly header?: ResponseHeader;
  readonly members?: readonly EtcdMember[];
}

export interface MemberAddResponse {
  readonly header?: ResponseHeader;
  readonly member?: EtcdMember;
  readonly members?: readonly EtcdMember[];
}

/** A failed call: the endpoint, and what went wrong as etcd or the network said it. */
export class EtcdCallError extends Error {
  constructor(
    readonly endpoint: string,
    readonly path: string,
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
    this.name = 'EtcdCallError';
  }
}

interface CallResult<T> {
  readonly body: T;
  readonly servedCertificate: ServedCertificate | undefined;
}

function describeServed(socket: TLSSocket): ServedCertificate | undefined {
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.valid_to) return undefined;
  const commonName = peer.subject?.CN;
  return { subject: Array.isArray(commonName) ? commonName.join(',') : (commonName ?? ''), serialNumber: peer.serialNumber, validTo: new Date(peer.valid_to) };
}

/** A request on a fresh connection with the client's certificate: GET without a payload, else a JSON POST. */
function requestOptions(payload: string | undefined, options: ClientOptions): RequestOptions {
  return {
    method: payload === undefined ? 'GET' : 'POST',
    ca: options.tls.caPem,
    cert: options.tls.certPem,
    key: options.tls.keyPem,
    agent: false,
    timeout: options.timeoutMs,
    headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
  };
}

/** How often a name that got no answer from the resolver (EAI_AGAIN) is looked up again, and how far apart. */
const TEMPORARY_DNS_ATTEMPTS = 6;
const TEMPORARY_DNS_PAUSE_MS = 1000;

/**
 * One HTTPS call on a fresh connection (so every call shows the certificate etcd serves now).
 * EAI_AGAIN is the resolver saying "temporary failure in name resolution": a name server that is
 * restarting or overloaded for a moment (seen when a DNS service reloads its zone right after the
 * stable client name's records change). That one is asked again, a few seconds at most; every
 * other failure is the caller's at once.
 */
async function call<T>(endpoint: string, path: string, body: unknown, options: ClientOptions): Promise<CallResult<T>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await callOnce<T>(endpoint, path, body, options);
    } catch (error) {
      if (!(error instanceof EtcdCallError && error.message.startsWith('EAI_AGAIN:')) || attempt >= TEMPORARY_DNS_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, TEMPORARY_DNS_PAUSE_MS));
    }
  }
}

function callOnce<T>(endpoint: string, path: string, body: unknown, options: ClientOptions): Promise<CallResult<T>> {
  const url = new URL(path, endpoint);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      requestOptions(payload, options),
      (res) => {
        const served = describeServed(res.socket as TLSSocket);
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          if (res.statusCode !== 200) {
            // The gateway reports gRPC errors as {"error": ...} (3.4) or {"message": ...} (3.5+).
            const reported = parsed as { error?: string; message?: string } | undefined;
            const reason = reported?.message ?? reported?.error ?? text.trim().slice(0, 200);
            reject(new EtcdCallError(endpoint, path, `HTTP ${res.statusCode}: ${reason}`, res.statusCode));
            return;
          }
          if (parsed === undefined) {
            reject(new EtcdCallError(endpoint, path, `not JSON: ${text.trim().slice(0, 200)}`));
            return;
          }
          resolve({ body: parsed as T, servedCertificate: served });
        });
        res.on('error', (error) => reject(new EtcdCallError(endpoint, path, error.message)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => reject(new EtcdCallError(endpoint, path, error.code ? `${error.code}: ${error.message}` : error.message)));
    req.end(payload);
  });
}

export interface HealthAnswer {
  readonly healthy: boolean;
  readonly reason: string | undefined;
  readonly servedCertificate: ServedCertificate | undefined;
}

/** `/health`: true when the member has a leader, no alarms and serves a linearizable read. */
export async function memberHealth(endpoint: string, options: ClientOptions): Promise<HealthAnswer> {
  const { body, servedCertificate } = await call<{ health?: string | boolean; reason?: string }>(endpoint, '/health', undefined, options);
  const healthy = body.health === true || body.health === 'true';
  return { healthy, reason: healthy ? undefined : body.reason || `health is ${JSON.stringify(body.health)}`, servedCertificate };
}

export async function memberStatus(endpoint: string, options: ClientOptions): Promise<StatusResponse> {
  return (await call<StatusResponse>(endpoint, '/v3/maintenance/status', {}, options)).body;
}

export async function memberList(endpoint: string, options: ClientOptions): Promise<readonly EtcdMember[]> {
  return (await call<MemberListResponse>(endpoint, '/v3/cluster/member/list', {}, options)).body.members ?? [];
}

/** Adds a member; a learner (etcd 3.4+) gets the log but no vote until it is promoted. */
export async function memberAdd(endpoint: string, peerUrls: readonly string[], options: ClientOptions & { readonly learner?: boolean }): Promise<MemberAddResponse> {
  const body = options.learner ? { peerURLs: peerUrls, isLearner: true } : { peerURLs: peerUrls };
  return (await call<MemberAddResponse>(endpoint, '/v3/cluster/member/add', body, options)).body;
}

export async function memberRemove(endpoint: string, memberId: string, options: ClientOptions): Promise<void> {
  await call<unknown>(endpoint, '/v3/cluster/member/remove', { ID: memberId }, options);
}

/** Promotes a learner; etcd refuses while it is not in sync with the leader ("can only promote a learner member which is in sync with leader"). */
export async function memberPromote(endpoint: string, memberId: string, options: ClientOptions): Promise<void> {
  await call<unknown>(endpoint, '/v3/cluster/member/promote', { ID: memberId }, options);
}

/** Hands leadership to `targetId`; only the leader itself accepts this call. */
export async function moveLeader(leaderEndpoint: string, targetId: string, options: ClientOptions): Promise<void> {
  await call<unknown>(leaderEndpoint, '/v3/maintenance/transfer-leadership', { targetID: targetId }, options);
}

export interface VersionAnswer {
  /** The member's own release, e.g. 3.5.30. */
  readonly etcdserver: string;
  /** The version the whole cluster speaks (the lowest member's minor), e.g. 3.5.0; "not_decided" at first. */
  readonly etcdcluster: string;
}

/** `/version`: the member's release and the cluster version. */
export async function memberVersion(endpoint: string, options: ClientOptions): Promise<VersionAnswer> {
  return (await call<VersionAnswer>(endpoint, '/version', undefined, options)).body;
}

/** The first endpoint that answers `call`, trying them in order; all failures when none does. */
export async function firstAnswer<T>(endpoints: readonly string[], attempt: (endpoint: string) => Promise<T>): Promise<{ endpoint: string; value: T }> {
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    try {
      return { endpoint, value: await attempt(endpoint) };
    } catch (error) {
      failures.push(`${endpoint}: ${(error as Error).message}`);
    }
  }
  throw new EtcdCallError(endpoints.join(','), '', `no member answered (${failures.join('; ')})`);
}

/** Hex, as etcdctl prints member IDs (the API gives them as decimal strings). */
export function hexMemberId(id: string): string {
  return BigInt(id).toString(16);
}

/** An active alarm: NOSPACE (the database reached its quota: writes refused) or CORRUPT; raised by one member, held by the cluster. */
export interface EtcdAlarm {
  readonly memberID: string;
  readonly alarm: string;
}

/** The cluster's active alarms (`etcdctl alarm list`). */
export async function alarmList(endpoint: string, options: ClientOptions): Promise<readonly EtcdAlarm[]> {
  return (await call<{ alarms?: readonly EtcdAlarm[] }>(endpoint, '/v3/maintenance/alarm', { action: 'GET' }, options)).body.alarms ?? [];
}

/** Disarms one alarm (`etcdctl alarm disarm` does this for each listed one). */
export async function alarmDisarm(endpoint: string, alarm: EtcdAlarm, options: ClientOptions): Promise<void> {
  await call<unknown>(endpoint, '/v3/maintenance/alarm', { action: 'DEACTIVATE', memberID: alarm.memberID, alarm: alarm.alarm }, options);
}

/**
 * Compacts the key-value history up to `revision` and waits until the freed pages are free on
 * every member (physical), so a defragmentation after it gives them back. A revision compacted
 * already is no error: the history is as asked.
 */
export async function compact(endpoint: string, revision: string, options: ClientOptions): Promise<void> {
  try {
    await call<unknown>(endpoint, '/v3/kv/compaction', { revision, physical: true }, options);
  } catch (error) {
    if (!/required revision has been compacted/.test((error as Error).message)) throw error;
  }
}

/** Defragments this one member's database: it blocks reads and writes on that member while it runs. */
export async function defragment(endpoint: string, options: ClientOptions): Promise<void> {
  await call<unknown>(endpoint, '/v3/maintenance/defragment', {}, options);
}

/**
 * Streams the member's database (`etcdctl snapshot save` does the same over gRPC): the JSON
 * gateway answers `POST /v3/maintenance/snapshot` with newline-separated messages
 * `{"result":{"blob":"<base64>","remaining_bytes":"..."}}` (checked on etcd 3.4.23: every message
 * but the last holds up to 32 KiB of the bbolt file; the last holds the 32-byte SHA-256 of all
 * before it, which etcd's server appends: server/etcdserver/api/v3rpc/maintenance.go, Snapshot,
 * "send SHA digest for integrity checks during snapshot restore operation"). Each blob goes to
 * `sink` in order; an error message in the stream, or a stream that ends without a clean end, is
 * an error. `options.timeoutMs` bounds the whole stream, not one read.
 */
export function snapshotStream(endpoint: string, options: ClientOptions, sink: (blob: Buffer) => void): Promise<{ readonly bytes: number }> {
  const path = '/v3/maintenance/snapshot';
  const url = new URL(path, endpoint);
  const payload = '{}';
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      reject(new EtcdCallError(endpoint, path, message));
    };
    const deadline = setTimeout(() => fail(`the snapshot did not arrive within ${options.timeoutMs / 1000} s`), options.timeoutMs);
    const req = request(
      url,
      requestOptions(payload, options),
      (res) => {
        let pending = '';
        let bytes = 0;
        let errorText: string | undefined;
        const line = (text: string) => {
          if (text.trim() === '') return;
          let message: { result?: { blob?: string }; error?: { message?: string; grpc_code?: number } | string; message?: string };
          try {
            message = JSON.parse(text);
          } catch {
            errorText = `not JSON: ${text.trim().slice(0, 200)}`;
            return;
          }
          if (message.error !== undefined || message.message !== undefined) {
            const reported = typeof message.error === 'string' ? message.error : (message.error?.message ?? message.message);
            errorText = `etcd ended the snapshot: ${reported}`;
            return;
          }
          const blob = Buffer.from(message.result?.blob ?? '', 'base64');
          bytes += blob.length;
          sink(blob);
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (settled) return;
          pending += chunk;
          let newline = pending.indexOf('\n');
          while (newline >= 0 && errorText === undefined) {
            line(pending.slice(0, newline));
            pending = pending.slice(newline + 1);
            newline = pending.indexOf('\n');
          }
          if (errorText !== undefined) fail(errorText);
        });
        res.on('end', () => {
          if (settled) return;
          if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}: ${pending.trim().slice(0, 200)}`);
          line(pending);
          if (errorText !== undefined) return fail(errorText);
          settled = true;
          clearTimeout(deadline);
          resolve({ bytes });
        });
        res.on('error', (error) => fail(error.message));
        res.on('aborted', () => fail('the member closed the stream before its end'));
      },
    );
    req.on('timeout', () => fail(`no data for ${options.timeoutMs / 1000} s`));
    req.on('error', (error: NodeJS.ErrnoException) => fail(error.code ? `${error.code}: ${error.message}` : error.message));
    req.end(payload);
  });
}

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** One key's value (utf-8), or undefined when the key does not exist. */
export async function kvGet(endpoint: string, key: string, options: ClientOptions): Promise<string | undefined> {
  const { body } = await call<{ kvs?: readonly { value?: string }[] }>(endpoint, '/v3/kv/range', { key: base64(key) }, options);
  const found = body.kvs?.[0];
  return found === undefined ? undefined : Buffer.from(found.value ?? '', 'base64').toString('utf8');
}

export async function kvPut(endpoint: string, key: string, value: string, options: ClientOptions): Promise<void> {
  await call<unknown>(endpoint, '/v3/kv/put', { key: base64(key), value: base64(value) }, options);
}

export async function kvDelete(endpoint: string, key: string, options: ClientOptions): Promise<void> {
  await call<unknown>(endpoint, '/v3/kv/deleterange', { key: base64(key) }, options);
}
