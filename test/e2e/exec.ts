import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Variables added to the inherited environment. */
  env?: Record<string, string>;
  // Long, chatty steps (debootstrap) log to a file instead of filling memory.
  logFile?: string;
}

// Argv, never a shell string: paths and PEM blobs need no quoting.
export function runAllowingFailure(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('runAllowingFailure: empty argv');
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    stdio: [options.input === undefined ? 'ignore' : 'pipe', logFd ?? 'pipe', logFd ?? 'pipe'],
  });
  if (logFd !== undefined) closeSync(logFd);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A child that exits before reading its input must not crash the test run with EPIPE.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(options.input);
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs / 1000}s: ${argv.join(' ')}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export async function run(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await runAllowingFailure(argv, options);
  if (result.code !== 0) {
    const where = options.logFile === undefined ? result.stderr.trim().slice(-2000) : `see ${options.logFile}`;
    throw new Error(`exit ${result.code}: ${argv.join(' ')}\n${where}`);
  }
  return result.stdout;
}

// A long-lived process (qemu, the mirror's HTTP server) with output to a file; the caller owns its PID.
export function startLogged(argv: readonly string[], logFile: string): ChildProcess {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('startLogged: empty argv');
  const logFd = openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  return child;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs, intervalMs }: { timeoutMs: number; intervalMs: number },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
