import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startLogged, waitFor, runAllowingFailure } from './exec.js';
import type { TestNetwork } from './netns.js';

// The release mirror itself (official layout from Debian's etcd) is built by the shared test helper.
export { buildEtcdMirror, DEBIAN_ETCD as DEBIAN_ETCD_RELEASE } from '../support/etcd-mirror.js';

export interface MirrorServer {
  url: string;
  process: ChildProcess;
  logFile: string;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./mirror-server.mjs', import.meta.url));

export async function serveMirror(network: TestNetwork, root: string, port: number, logFile: string): Promise<MirrorServer> {
  const url = `http://${network.bridgeAddress}:${port}`;
  const server = startLogged(network.inside(['node', SERVER_SCRIPT, root, network.bridgeAddress, String(port)]), logFile);
  await waitFor(
    `the mirror at ${url}`,
    async () => {
      if (server.exitCode !== null) throw new Error(`mirror server exited (${server.exitCode}); see ${logFile}`);
      const probe = await runAllowingFailure(network.inside(['curl', '-fsS', '-o', '/dev/null', `${url}/`]), { timeoutMs: 10_000 });
      // 404 for "/" means the server answers.
      return probe.code === 0 || probe.code === 22 ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 300 },
  );
  return { url, process: server, logFile };
}
