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

/**
 * The one parser of numeric flags: absent gives `fallback`; otherwise a plain decimal number that
 * passes `check`, or a usage error `<name>: "<value>" <rule>`.
 */
export function numberFlag(flags: ParsedOptions, name: string, fallback: number, check: (value: number) => boolean, rule: string): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!check(value)) throw usageError('validate', `${name}: ${JSON.stringify(raw)} ${rule}`);
  return value;
}

/** A flag in seconds as milliseconds, never 0 ("no timeout" to the callers): at least 1 ms. */
export function secondsFlagMs(flags: ParsedOptions, name: string, fallbackSeconds: number, maxSeconds: number, rule: string): number {
  const seconds = numberFlag(flags, name, fallbackSeconds, (value) => value > 0 && value <= maxSeconds, rule);
  return Math.max(1, Math.round(seconds * 1000));
}

/** A string flag, trimmed; undefined when absent. */
export function stringFlag(flags: ParsedOptions, name: string): string | undefined {
  const value = flags[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

/** A repeatable and comma-separated flag as its items, trimmed, empty ones dropped. */
export function listFlag(flags: ParsedOptions, name: string): string[] {
  const value = flags[name];
  const items = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  return items.flatMap((item) => item.split(',')).map((item) => item.trim()).filter((item) => item !== '');
}
