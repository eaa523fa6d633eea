import { main } from '../../src/cli.js';
import type { CommandContext } from '../../src/context.js';
import { nativeKeySource, type KeySource } from '../../src/pki/mint.js';

export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

// Keys are made once per file base and reused: minting is not what these tests are about.
const keys = new Map<string, Promise<string>>();
export const cachedKeySource: KeySource = (spec, fileBase) => {
  const key = `${JSON.stringify(spec)}/${fileBase}`;
  if (!keys.has(key)) keys.set(key, nativeKeySource(spec, fileBase));
  return keys.get(key)!;
};

/** The CLI in-process, in `cwd`, with an explicit env (process.env is never touched). */
export async function runInProcess(args: string[], cwd: string, env: Record<string, string>, overrides: Partial<CommandContext> = {}): Promise<InProcessRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(
    args,
    { env, stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) }, cwd },
    { keySource: cachedKeySource, ...overrides },
  );
  return { code, stdout, stderr };
}
