/** What a command of the CLI is: the table in cli.ts lists them, completion.ts renders scripts from them. */
import type { CommandContext } from './context.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Every option, the common ones (--json, -o, --version, --help) included: see withCommonOptions. */
  readonly options: readonly OptionSpec[];
  /** The one word a command takes besides options (`completion bash`), and its choices. */
  readonly argument?: { readonly name: string; readonly choices: readonly string[] };
  readonly examples: readonly string[];
  /** The command's code, imported only when it runs: `--help` and the other commands never load it (nor its SDKs). */
  readonly load: () => Promise<RunCommand>;
}

export type RunCommand = (flags: ParsedOptions, context: CommandContext) => Promise<number>;

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
