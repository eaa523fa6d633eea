import { execFile } from 'node:child_process';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a program without blocking the event loop (the test's own HTTP mirror must keep answering),
 * bounded by a timeout; a non-zero exit is a result, not an exception.
 */
export function runProgram(file: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: options.timeoutMs ?? 60_000, env: options.env ?? process.env, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        const hint = error.code === 'ENOENT' ? ` (is ${file} installed? e.g. apt-get install ${file})` : error.killed ? ' (killed: timeout)' : '';
        reject(new Error(`${file} ${args.join(' ')}: ${error.message}${hint}\n${stderr}`));
        return;
      }
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}
