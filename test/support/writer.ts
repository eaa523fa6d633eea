import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const WRITER_SCRIPT = fileURLToPath(new URL('./writer.mjs', import.meta.url));

/** What the continuous writer saw: every key etcd acknowledged, and the client's longest outage. */
export interface WriterSummary {
  readonly attempts: number;
  readonly acknowledged: readonly string[];
  readonly longestGapMs: number;
}

export interface RunningWriter {
  /** Ends the writer (after the put in flight) and returns its summary. */
  stop(): Promise<WriterSummary>;
}

/**
 * Starts writer.mjs (one put every 100 ms, each a new key holding a counter) with the admin
 * certificate; `wrap` runs it where the endpoints resolve (a namespace). Node is this process's.
 */
export function startWriter(
  wrap: (argv: readonly string[]) => readonly string[],
  summaryFile: string,
  tls: { readonly cacert: string; readonly cert: string; readonly key: string },
  prefix: string,
  endpoints: readonly string[],
): RunningWriter {
  const [command, ...args] = wrap([process.execPath, WRITER_SCRIPT, summaryFile, tls.cacert, tls.cert, tls.key, prefix, endpoints.join(',')]);
  const child = spawn(command!, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      return JSON.parse(readFileSync(summaryFile, 'utf8')) as WriterSummary;
    },
  };
}
