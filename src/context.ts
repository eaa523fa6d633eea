import type { KeySource } from './pki/mint.js';

export interface Writable {
  write(text: string): unknown;
}

/** What a command may touch of the outside world; tests pass their own. */
export interface CommandContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly cwd: string;
  readonly now: () => Date;
  /** Injected in golden tests for stable output. */
  readonly keySource?: KeySource;
  readonly serialSource?: () => string;
  /**
   * With --json (-o json): the real stdout, for the one JSON document (src/result.ts); `stdout` is
   * then stderr, so progress and notes cannot mix into it. Undefined for text output.
   */
  readonly json?: Writable;
  /** Asks the user a yes/no question; undefined when nobody can answer (no terminal). */
  readonly confirm?: (question: string) => Promise<boolean | undefined>;
}

/** The key and serial sources a test injected, as mintPki and issueLeaf take them. */
export function mintSources(context: CommandContext): { keySource?: KeySource; serialSource?: () => string } {
  return {
    ...(context.keySource ? { keySource: context.keySource } : {}),
    ...(context.serialSource ? { serialSource: context.serialSource } : {}),
  };
}
