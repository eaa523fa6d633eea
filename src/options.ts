import { parseArgs } from 'node:util';
import { usageError } from './errors.js';

/** One command-line option: the single source for parsing and for `--help`. */
export interface OptionSpec {
  readonly name: string;
  readonly type: 'string' | 'boolean';
  readonly description: string;
  readonly valueName?: string;
  readonly multiple?: boolean;
  readonly short?: string;
}

export type ParsedOptions = Record<string, string | boolean | string[] | undefined>;

export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[]): ParsedOptions {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const spec of specs) {
    options[spec.name] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    return values as ParsedOptions;
  } catch (error) {
    throw usageError('parse', describeParseError(error));
  }
}

function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Node's messages carry advice for script authors ("To specify a positional argument..."): keep the first sentence.
  return message.split('. ')[0]!.replace(/\.$/, '');
}

/** `--help` text for one command, from the same specs that parse it. */
export function renderOptionsHelp(specs: readonly OptionSpec[]): string {
  const rows = specs.map((spec) => {
    const flag = `--${spec.name}${spec.type === 'string' ? ` <${spec.valueName ?? 'value'}>` : ''}`;
    return [spec.short ? `-${spec.short}, ${flag}` : `    ${flag}`, spec.description] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join('\n');
}
