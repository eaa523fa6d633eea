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
  /** Asks the user a yes/no question; undefined when nobody can answer (no terminal). */
  readonly confirm?: (question: string) => Promise<boolean | undefined>;
}
