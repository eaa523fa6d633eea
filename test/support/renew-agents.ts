import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_PATHS } from '../../src/plan.js';
import { rewriteNodePaths, runProcess } from './local-cluster.js';

/** What one pass of a member's renewal agent printed. */
export interface AgentPass {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * One pass of the member's etcd-renew-agent.service, exactly its ExecStart with the node paths under
 * `root` (etcdctl: Debian's); `wrap` runs it where the member names resolve (a namespace).
 */
export function renewAgentOnce(root: string, wrap: (argv: string[]) => string[] = (argv) => argv): Promise<AgentPass> {
  const unit = readFileSync(join(root, NODE_PATHS.renewAgentService), 'utf8');
  const execStart = /^ExecStart=(.+)$/m.exec(unit)?.[1];
  if (!execStart) throw new Error(`${root}: ${NODE_PATHS.renewAgentService} has no ExecStart`);
  const [command, ...args] = wrap(['sh', ...rewriteNodePaths(execStart, root).split(' ')]);
  return runProcess(command!, args, 60_000);
}

/** The agents of the members under `roots`, each run every 300 ms (the timer's job) until stopped; failed passes are kept. */
export function startRenewAgents(roots: readonly string[], wrap?: (argv: string[]) => string[]) {
  let running = true;
  const failures: string[] = [];
  const loops = roots.map(async (root) => {
    while (running) {
      const pass = await renewAgentOnce(root, wrap);
      if (pass.code !== 0) failures.push(`${root}: ${pass.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  });
  return {
    failures,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
}
