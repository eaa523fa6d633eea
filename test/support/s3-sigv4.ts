/**
 * s3rver with AWS signature v4 checked. s3rver 3.7 checks only v2 signatures: for v4 it accepts
 * any signature of a known access key id ("Signature version 4 calculation is unimplemented" in
 * its middleware/authentication.js). This front, on 127.0.0.1, checks each request's v4 signature
 * and payload hash as S3 does, answers a mismatch as S3 does (403 SignatureDoesNotMatch, 400
 * XAmzContentSHA256Mismatch), and passes the rest to s3rver.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

export interface CheckedS3 {
  /** `http://127.0.0.1:<port>`: path-style, `<url>/<bucket>/<key>`. */
  readonly url: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Requests the front refused, as `<code> <method> <path>`. */
  readonly refused: string[];
  close(): Promise<void>;
}

/** s3rver's built-in account. */
const ACCOUNT = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
/** RFC 3986 encoding, as signature v4 wants for query names and values. */
const encode = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((pair) => {
      const [name = '', value = ''] = pair.split('=');
      return [encode(decodeURIComponent(name)), encode(decodeURIComponent(value))] as const;
    })
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** `20261203T081500Z` -> ms since the epoch. */
function amzDateMs(stamp: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) : Number.NaN;
}

/**
 * A presigned request (query-string authentication): the signature covers the method, path, the
 * query without X-Amz-Signature, the signed headers and UNSIGNED-PAYLOAD; it is refused once
 * X-Amz-Date + X-Amz-Expires has passed, as S3 does (403 AccessDenied, "Request has expired").
 */
function checkPresignedV4(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, secretAccessKey: string, nowMs: number): { status: number; code: string } | undefined {
  const [path = '/', query = ''] = (req.url ?? '/').split('?');
  const params = new URLSearchParams(query);
  const credential = params.get('X-Amz-Credential') ?? '';
  const date = params.get('X-Amz-Date') ?? '';
  const expires = Number(params.get('X-Amz-Expires') ?? 'NaN');
  const signedHeaders = params.get('X-Amz-SignedHeaders') ?? '';
  const signature = params.get('X-Amz-Signature') ?? '';
  const match = /^([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request$/.exec(credential);
  if (params.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !match || !/^[0-9a-f]{64}$/.test(signature) || !(expires > 0)) return { status: 403, code: 'AccessDenied' };
  const started = amzDateMs(date);
  if (!(nowMs >= started - 15 * 60_000 && nowMs <= started + expires * 1000)) return { status: 403, code: 'AccessDenied' };
  const [, , day, region, service] = match as unknown as string[];
  const unsigned = query
    .split('&')
    .filter((pair) => !pair.startsWith('X-Amz-Signature='))
    .join('&');
  const headers = signedHeaders
    .split(';')
    .map((name) => `${name}:${String(req.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonicalRequest = [req.method, path, canonicalQuery(unsigned), headers, signedHeaders, 'UNSIGNED-PAYLOAD'].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonicalRequest)].join('\n');
  const key = [day!, region!, service!, 'aws4_request'].reduce<Buffer | string>((previous, part) => hmac(previous, part), `AWS4${secretAccessKey}`);
  return createHmac('sha256', key).update(stringToSign).digest('hex') === signature ? undefined : { status: 403, code: 'SignatureDoesNotMatch' };
}

/** Why the request's v4 signature or payload hash is wrong, with S3's error code; undefined when right. */
export function checkSignatureV4(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, body: Buffer, secretAccessKey: string, nowMs = Date.now()): { status: number; code: string } | undefined {
  if (req.headers.authorization === undefined && /[?&]X-Amz-Signature=/.test(req.url ?? '')) {
    return req.method === 'GET' || req.method === 'HEAD' ? checkPresignedV4(req, secretAccessKey, nowMs) : { status: 403, code: 'AccessDenied' };
  }
  const authorization = req.headers.authorization ?? '';
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(authorization);
  if (!match) return { status: 403, code: 'AccessDenied' };
  const [, , date, region, service, signedHeaders, signature] = match as unknown as string[];
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
  if (payloadHash === '') return { status: 400, code: 'InvalidRequest' };
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256(body)) return { status: 400, code: 'XAmzContentSHA256Mismatch' };
  const [path = '/', query = ''] = (req.url ?? '/').split('?');
  const headers = signedHeaders!
    .split(';')
    .map((name) => `${name}:${String(req.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonicalRequest = [req.method, path, canonicalQuery(query), headers, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', String(req.headers['x-amz-date'] ?? ''), scope, sha256(canonicalRequest)].join('\n');
  const key = [date!, region!, service!, 'aws4_request'].reduce<Buffer | string>((previous, part) => hmac(previous, part), `AWS4${secretAccessKey}`);
  return createHmac('sha256', key).update(stringToSign).digest('hex') === signature ? undefined : { status: 403, code: 'SignatureDoesNotMatch' };
}

/** s3rver on 127.0.0.1 with `buckets`, behind a front (on `listen`, default 127.0.0.1 and any port) that checks v4 signatures. */
export async function startCheckedS3(directory: string, buckets: readonly string[], listen: { host?: string; port?: number; log?: (line: string) => void } = {}): Promise<CheckedS3> {
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const backend = await s3rver.run();
  const refused: string[] = [];
  const front: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const problem = checkSignatureV4(req, body, ACCOUNT.secretAccessKey);
      if (problem) {
        refused.push(`${problem.code} ${req.method} ${req.url}`);
        listen.log?.(`${req.socket.remoteAddress} ${req.method} ${req.url?.split('?')[0]} refused ${problem.status} ${problem.code}`);
        res.writeHead(problem.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${problem.code}</Code><Message>checked by the test's signature v4 front</Message></Error>`);
        return;
      }
      const { expect: _continue, ...headers } = req.headers;
      const forward = request({ host: '127.0.0.1', port: backend.port, method: req.method, path: req.url, headers: { ...headers, 'content-length': String(body.length) } }, (answer) => {
        listen.log?.(`${req.socket.remoteAddress} ${req.method} ${req.url?.split('?')[0]} ${answer.statusCode} (${body.length} bytes in)`);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', (error) => {
        res.writeHead(502);
        res.end(error.message);
      });
      forward.end(body);
    });
  });
  const host = listen.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => front.listen(listen.port ?? 0, host, resolve));
  return {
    url: `http://${host}:${(front.address() as AddressInfo).port}`,
    ...ACCOUNT,
    refused,
    async close() {
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await s3rver.close();
    },
  };
}
