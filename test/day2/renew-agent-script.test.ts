import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../../src/plan.js';
import { runCli, tempDirsRemovedAfterAll } from '../support/cli.js';
import { rewriteNodePaths, runProcess, writeFilesOf } from '../support/local-cluster.js';

const workDir = tempDirsRemovedAfterAll('renew-agent');

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

  it('its service and timer, as gen-userdata writes them, pass systemd-analyze verify (paths moved under a root)', async () => {
    const cwd = workDir();
    const generated = await runCli(['gen-userdata', '--ips', '127.0.77.1,127.0.77.2,127.0.77.3', '--key-size', '2048'], cwd);
    expect(generated.code, generated.stderr).toBe(0);
    const files = writeFilesOf(readFileSync(join(cwd, 'out', 'etcd', 'user-data', 'etcd1.yaml'), 'utf8'));
    const root = join(cwd, 'root');
    const script = join(root, NODE_PATHS.renewAgentScript);
    mkdirSync(dirname(script), { recursive: true });
    writeFileSync(script, files.get(NODE_PATHS.renewAgentScript)!.content, { mode: 0o755 });
    const unitDir = join(root, 'verify');
    mkdirSync(unitDir, { recursive: true });
    const units = [NODE_PATHS.renewAgentService, NODE_PATHS.renewAgentTimer, NODE_PATHS.unitFile].map((path) => {
      const target = join(unitDir, basename(path));
      writeFileSync(target, rewriteNodePaths(files.get(path)!.content, root));
      return target;
    });
    expect(readFileSync(units[0]!, 'utf8')).toMatch(/^ExecStart=.+etcd-renew-agent\.sh --etcdctl \S+ --endpoints https:\/\/127\.0\.77\.1:2379,https:\/\/127\.0\.77\.2:2379,https:\/\/127\.0\.77\.3:2379 .* --member etcd1 --state-dir \S+\/etc\/etcd\/pki\/renew$/m);
    const result = await runProcess('systemd-analyze', ['verify', ...units]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The user-data enables the timer.
    expect(readFileSync(join(cwd, 'out', 'etcd', 'user-data', 'etcd1.yaml'), 'utf8')).toContain('systemctl enable --no-reload --now etcd-renew-agent.timer');
  });
});
