import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runProcess } from '../support/local-cluster.js';

// The learner's self-promotion script (etcd-promote.service); test/day2/membership.test.ts runs it against real etcd.
const SCRIPT = fileURLToPath(new URL('../../cloud-init/etcd-promote.sh', import.meta.url));

const args = (overrides: Record<string, string> = {}) =>
  Object.entries({
    '--etcdctl': '/usr/bin/etcdctl',
    // Nothing listens on loopback port 9: the local member never answers.
    '--local-url': 'https://127.0.0.1:9',
    '--endpoints': 'https://127.0.0.1:9',
    '--cacert': '/nonexistent/ca.crt',
    '--cert': '/nonexistent/member.crt',
    '--key': '/nonexistent/member.key',
    '--member': 'etcd4',
    '--member-id': '9266c48bb6c02e2a',
    '--attempts': '2',
    '--interval': '0',
    ...overrides,
  }).flat();

describe('etcd-promote.sh', () => {
  it('gives up after --attempts tries and says how to promote by hand', async () => {
    const result = await runProcess('sh', [SCRIPT, ...args()], 120_000);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^etcd-cloudinit: etcd-promote: attempt 1 of 2: the local member does not answer yet: .+; next try in 0s\n$/);
    expect(result.stderr).toMatch(/^etcd-cloudinit: etcd-promote: gave up after 2 attempts \(the local member does not answer yet: .+\); promote it by hand: etcdctl member promote 9266c48bb6c02e2a\n$/);
  });

  it.each([
    [{ '--member-id': '10549428439743108509x' }, '--member-id must be the hex member ID, got 10549428439743108509x'],
    [{ '--attempts': '0' }, '--attempts must be a positive whole number, got 0'],
    [{ '--interval': '1s' }, '--interval must be a whole number of seconds, got 1s'],
    [{ '--local-url': '' }, '--local-url is required'],
  ])('refuses bad arguments: %o', async (overrides, message) => {
    const result = await runProcess('sh', [SCRIPT, ...args(overrides)]);
    expect(result).toEqual({ code: 1, stdout: '', stderr: `etcd-cloudinit: etcd-promote: ${message}\n` });
  });
});
