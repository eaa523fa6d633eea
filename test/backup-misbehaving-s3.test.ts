/**
 * `backups` and `restore` against an S3 endpoint that misbehaves: a small HTTP server on
 * 127.0.0.1 whose bucket name picks what it does wrong (answers nothing, stalls on HEAD only,
 * truncates forever, answers HTML or an empty 200, lists absurd names). Each run must end with
 * exit 1 and a message naming the endpoint and what failed, and within a bound: --timeout plus
 * a margin generous enough never to flake (the point is "it does not hang", not speed; the
 * valid path against real s3rver is in backup-commands.test.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIST_PAGE_LIMIT } from '../src/backup/store.js';
import { runCli, tempDirsRemovedAfterAll } from './support/cli.js';
import { outputSchemaErrors } from './support/output-schemas.js';

const newDir = tempDirsRemovedAfterAll('misbehaving-s3');
const ENV = { SPACES_ACCESS_KEY_ID: 'AKEXAMPLE', SPACES_SECRET_ACCESS_KEY: 'not-a-real-secret-0123456789' };
const TIMEOUT_SECONDS = 1;
/** --timeout, plus node's start-up and a loaded 2-core machine: far below "hangs", far above a slow run. */
const BOUND_MS = (TIMEOUT_SECONDS + 10) * 1000;
const SHA = 'ab'.repeat(32);
const GOOD_KEY = 'prod/20261203T080000Z-etcd2-rev4711.db';
const OLDER_KEY = 'prod/20261203T070000Z-etcd1-rev4000.db';

/** Objects under the prefix whose names only look like snapshots, and one that is not under it at all. */
const ABSURD = [
  'prod/20261299T999999Z-x-rev99999999999999999999999999.db',
  'prod/20260230T080000Z-etcd1-rev5.db',
  'prod/20261203T240000Z-etcd1-rev5.db',
  'prod/20261203T080000Z-Etcd1-rev5.db',
  'prod/20261203T080000Z--rev5.db',
  'prod/20261203T080000Z-etcd1-rev5.db.part',
  'prod/nested/20261203T080000Z-etcd1-rev5.db',
  'prod/20261203T080000Z-etcd1-rev-5.db',
];

function listing(bucket: string, keys: readonly { key: string; size?: number }[], truncated?: string): string {
  const contents = keys.map(({ key, size = 1024 }) => `<Contents><Key>${key}</Key><LastModified>2026-12-03T08:00:00.000Z</LastModified><ETag>"0"</ETag><Size>${size}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>prod/</Prefix>` +
    `<KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>${truncated !== undefined}</IsTruncated>` +
    (truncated ? `<NextContinuationToken>${truncated}</NextContinuationToken>` : '') +
    `${contents.join('')}</ListBucketResult>`
  );
}

interface Misbehaving {
  readonly url: string;
  /** Requests seen per bucket, as `<method> <bucket>`. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** The server: path-style `/<bucket>[/<key>]`; the bucket names the misbehaviour. */
async function startMisbehavingS3(): Promise<Misbehaving> {
  const requests: string[] = [];
  let pages = 0;
  const xml = (response: ServerResponse, body: string) => response.writeHead(200, { 'content-type': 'application/xml' }).end(body);
  const head = (response: ServerResponse, key: string) =>
    response.writeHead(200, { 'content-length': '1024', 'last-modified': 'Thu, 03 Dec 2026 08:00:00 GMT', ...(key === GOOD_KEY ? { 'x-amz-meta-sha256': SHA } : {}) }).end();
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    requests.push(`${request.method} ${bucket}`);
    request.resume();
    const listed = request.method === 'GET' && key === '';
    switch (bucket) {
      case 'silent':
        return; // accepts, reads the request, never answers
      case 'stall-head':
        if (listed) return xml(response, listing(bucket, [{ key: GOOD_KEY }]));
        return; // HEAD: never answers
      case 'same-token':
        return xml(response, listing(bucket, [{ key: GOOD_KEY }], 'the-same-token'));
      case 'new-tokens':
        return xml(response, listing(bucket, [], `token-${++pages}`));
      case 'no-token':
        return xml(response, listing(bucket, [{ key: GOOD_KEY }], ''));
      case 'html':
        return response.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>');
      case 'empty':
        return response.writeHead(200, { 'content-length': '0' }).end();
      case 'absurd':
        if (listed) return xml(response, listing(bucket, [...ABSURD.map((key) => ({ key })), { key: GOOD_KEY }, { key: 'prod/20261203T090000Z-etcd3-rev4800.db', size: -5 }]));
        return head(response, key);
      case 'newest-unchecked':
        // The newest snapshot has no recorded sha256; the one before it has.
        if (listed) return xml(response, listing(bucket, [{ key: 'prod/20261203T090000Z-etcd3-rev4800.db' }, { key: GOOD_KEY }, { key: OLDER_KEY }]));
        return head(response, key);
      default:
        return response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('backups and restore against a misbehaving S3 endpoint', () => {
  let server: Misbehaving;
  beforeAll(async () => {
    server = await startMisbehavingS3();
  });
  afterAll(async () => server?.close());

  const target = (bucket: string) => ['--backup-url', `s3://${bucket}/prod`, '--backup-endpoint', server.url, '--timeout', String(TIMEOUT_SECONDS)];
  const timed = async (args: string[]) => {
    const dir = newDir();
    const started = Date.now();
    const run = await runCli(args, dir, ENV);
    return { ...run, dir, elapsedMs: Date.now() - started };
  };
  const at = () => `at ${server.url.replace(/[.]/g, '\\.')}`;

  const failures: [string, string, () => RegExp][] = [
    ['a server that accepts and never answers', 'silent', () => new RegExp(`cannot list s3://silent/prod/ ${at()}: ListObjectsV2 got no answer within 1 s \\(--timeout\\)`)],
    ['a server that lists, then stalls on HEAD', 'stall-head', () => new RegExp(`cannot read ${GOOD_KEY} in s3://stall-head/prod/ ${at()}: HeadObject got no answer within 1 s \\(--timeout\\)`)],
    ['IsTruncated forever with the same token', 'same-token', () => new RegExp(`cannot list \\(page 2\\) s3://same-token/prod/ ${at()}: ListObjectsV2 returned the continuation token "the-same-token" a second time`)],
    ['IsTruncated forever with a new token each time', 'new-tokens', () => new RegExp(`cannot list \\(page ${LIST_PAGE_LIMIT}\\) s3://new-tokens/prod/ ${at()}: ListObjectsV2 is still truncated after ${LIST_PAGE_LIMIT} pages`)],
    ['IsTruncated without a token', 'no-token', () => new RegExp(`cannot list s3://no-token/prod/ ${at()}: ListObjectsV2's page is truncated but has no NextContinuationToken`)],
    ['an HTML page with 200', 'html', () => new RegExp(`cannot list s3://html/prod/ ${at()}: ListObjectsV2's answer is not an S3 listing`)],
    ['an empty 200', 'empty', () => new RegExp(`cannot list s3://empty/prod/ ${at()}: ListObjectsV2's answer is not an S3 listing`)],
  ];

  describe.each([['backups'], ['backups --json'], ['restore']])('%s', (command) => {
    it.each(failures)('%s: exit 1, the endpoint and the operation named, within the bound, nothing written', async (_name, bucket, message) => {
      const args =
        command === 'restore' ? ['restore', '--cluster-name', 'back', '--ips', '127.0.0.11,127.0.0.12,127.0.0.13', '--key-size', '2048', ...target(bucket)] : [...command.split(' '), ...target(bucket)];
      const run = await timed(args);
      expect(run.stderr).toMatch(message());
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).not.toMatch(/snapshot/i);
      expect(run.elapsedMs).toBeLessThan(BOUND_MS);
      expect(run.stderr).not.toContain(ENV.SPACES_SECRET_ACCESS_KEY);
      expect(existsSync(join(run.dir, 'out'))).toBe(false);
    });
  });

  it('the same token was asked for once, not a thousand times', () => {
    // backups, backups --json and restore: each read page 1 and page 2, and stopped.
    expect(server.requests.filter((request) => request === 'GET same-token')).toHaveLength(6);
  });

  it('absurd object names are skipped and counted, never printed; --json stays valid', async () => {
    const json = await timed(['backups', '--json', ...target('absurd')]);
    expect(json.code, json.stderr).toBe(0);
    const document = JSON.parse(json.stdout) as { snapshots: { key: string }[]; skipped: number };
    expect(outputSchemaErrors('backups', document)).toEqual([]);
    expect(document.snapshots.map((snapshot) => snapshot.key)).toEqual([GOOD_KEY]);
    expect(document.skipped).toBe(ABSURD.length + 1);
    const table = await timed(['backups', ...target('absurd')]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`skipped ${ABSURD.length + 1} objects whose names are not snapshots`);
    expect(table.stdout).toContain(GOOD_KEY);
    for (const key of ABSURD) expect(table.stdout).not.toContain(key);
    expect(table.stdout).not.toMatch(/NaN|Infinity|e\+\d/);
  });

  it('restore without --snapshot takes the newest restorable snapshot and says what it passed over', async () => {
    const run = await timed(['restore', '--cluster-name', 'back', '--ips', '127.0.0.11,127.0.0.12,127.0.0.13', '--key-size', '2048', ...target('newest-unchecked')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('passed over 1 newer snapshot(s) with no recorded sha256, which a node could not check (prod/20261203T090000Z-etcd3-rev4800.db); took the newest restorable one');
    expect(run.stderr).toContain(`restore: snapshot ${GOOD_KEY} (member etcd2, revision 4711`);
    expect(existsSync(join(run.dir, 'out', 'back', 'cluster.json'))).toBe(true);
  });
});
