import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { swapInServerOnlyMemberCerts } from './broken-user-data.js';
import { startTestCluster } from './cluster.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const debianMirror = process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const log = (line: string): void => console.log(`[e2e-negative ${new Date().toISOString().slice(11, 19)}] ${line}`);

// Opt-in (a second cluster boot): proves the harness goes red, and says why, for a broken user-data.
describe.runIf(process.env['E2E_NEGATIVE'] === '1')('a user-data whose member certs lack clientAuth', () => {
  it('fails the health wait with a message naming the key usage problem', async () => {
    const cluster = await startTestCluster({ repoRoot, debianMirror, log, alterGenerated: swapInServerOnlyMemberCerts });
    let failure: Error | undefined;
    try {
      // Long enough for etcd to start on a busy host; the wait ends early once a fatal TLS error shows.
      await cluster.waitHealthy(25 * 60_000);
    } catch (error) {
      failure = error as Error;
    } finally {
      await cluster.teardown('failed');
    }
    log(`the harness reported:\n${failure?.message ?? '(no failure: the broken cluster became healthy)'}`);
    expect(failure?.message).toMatch(/incompatible key usage/);
    expect(failure?.message).toMatch(/clientAuth/);
  });
});
