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
  /** Older names that still parse as this option (`--name` for `--member`); --help shows them. */
  readonly aliases?: readonly string[];
}

export type ParsedOptions = Record<string, string | boolean | string[] | undefined>;

/** The options, and with `allowPositionals` the words that are not options (`completion bash`). */
export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[], allowPositionals = false): ParsedOptions & { readonly _?: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const spec of specs) {
    options[spec.name] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
    for (const alias of spec.aliases ?? []) options[alias] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals });
  } catch (error) {
    throw usageError('parse', describeParseError(error) + unknownOptionHint(error, specs));
  }
  const values = foldAliases(parsed.values as ParsedOptions, specs);
  return { ...values, ...(allowPositionals ? { _: parsed.positionals } : {}) };
}

/** An alias's value under the option's own name, so commands read one name; both given must agree. */
function foldAliases(values: ParsedOptions, specs: readonly OptionSpec[]): ParsedOptions {
  const folded = { ...values };
  for (const spec of specs) {
    for (const alias of spec.aliases ?? []) {
      const value = folded[alias];
      if (value === undefined) continue;
      delete folded[alias];
      const own = folded[spec.name];
      if (own === undefined) folded[spec.name] = value;
      else if (Array.isArray(own) && Array.isArray(value)) folded[spec.name] = [...own, ...value];
      else if (JSON.stringify(own) !== JSON.stringify(value)) {
        throw usageError('parse', `${spec.name}: --${spec.name} ${JSON.stringify(own)} and its alias --${alias} ${JSON.stringify(value)} disagree; give one`);
      }
    }
  }
  return folded;
}

/** `--ip` -> "; did you mean --ips?" when an option of the command is close to the unknown one. */
function unknownOptionHint(error: unknown, specs: readonly OptionSpec[]): string {
  if ((error as { code?: string }).code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return '';
  const unknown = /'(--[^'=]+)/.exec((error as Error).message)?.[1];
  if (unknown === undefined) return ''; // a short option (-x) is too short to guess from
  const suggestion = closestName(unknown.replace(/^-+/, ''), specs.flatMap((spec) => [spec.name, ...(spec.aliases ?? [])]));
  return suggestion === undefined ? '' : `; did you mean --${suggestion}?`;
}

/** Levenshtein distance: the number of single-character edits from `a` to `b`. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The candidate nearest to a mistyped name, if it is near enough to be what was meant (or the name is a prefix of it). */
export function closestName(typed: string, candidates: readonly string[]): string | undefined {
  const ranked = candidates
    .map((candidate) => ({ candidate, distance: candidate.startsWith(typed) && typed.length >= 2 ? 0.5 : editDistance(typed, candidate) }))
    .sort((a, b) => a.distance - b.distance);
  const best = ranked[0];
  return best && best.distance <= Math.max(1, Math.min(3, Math.floor(typed.length / 3))) ? best.candidate : undefined;
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
    const aliases = (spec.aliases ?? []).map((alias) => `--${alias}`).join(', ');
    return [spec.short ? `-${spec.short}, ${flag}` : `    ${flag}`, aliases ? `${spec.description} (alias: ${aliases})` : spec.description] as const;
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
