import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runProcess } from '../support/local-cluster.js';

// The member's renewal agent (etcd-renew-agent.service); test/day2/renew-in-place.test.ts runs it against real etcd.
const SCRIPT = fileURLToPath(new URL('../../cloud-init/etcd-renew-agent.sh', import.meta.url));

const args = (overrides: Record<string, string> = {}) =>
  Object.entries({
    '--etcdctl': '/usr/bin/etcdctl',
    // Nothing listens on loopback port 9.
    '--endpoints': 'https://127.0.0.1:9',
    '--cacert': '/nonexistent/ca.crt',
    '--cert': '/nonexistent/member.crt',
    '--key': '/nonexistent/member.key',
    '--member': 'etcd1',
    '--state-dir': '/nonexistent/renew',
    ...overrides,
  }).flat();

describe('etcd-renew-agent.sh', () => {
  it.each([
    [{ '--member': 'etcd1;rm' }, '--member must be a member name, got etcd1;rm'],
    [{ '--state-dir': '' }, '--state-dir is required'],
    [{ '--endpoints': '' }, '--endpoints is required'],
  ])('refuses bad arguments: %o', async (overrides, message) => {
    const result = await runProcess('sh', [SCRIPT, ...args(overrides)]);
    expect(result).toEqual({ code: 1, stdout: '', stderr: `etcd-cloudinit: etcd-renew-agent: ${message}\n` });
  });

  it('fails (and leaves the next pass to the timer) when etcd does not answer', async () => {
    const { mkdtempSync, rmSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'renew-agent-'));
    try {
      const result = await runProcess('sh', [SCRIPT, ...args({ '--state-dir': join(dir, 'renew') })], 60_000);
      expect(result.code).not.toBe(0);
      expect(result.stdout).toBe('');
      // Its scratch directory is gone: nothing half-made stays behind.
      expect(readdirSync(join(dir, 'renew'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
