import type { CommandContext } from './context.js';

/**
 * A command's result: with --json (or -o json) one JSON document, the only thing on stdout
 * (described by schema/output/<command>.schema.json); otherwise its text on stdout.
 */
export function writeResult(context: CommandContext, document: object, text: () => string): void {
  if (context.json) context.json.write(`${JSON.stringify(document, null, 2)}\n`);
  else context.stdout.write(text());
}

/** True when the result goes out as JSON: then stdout carries nothing else. */
export function jsonOutput(context: CommandContext): boolean {
  return context.json !== undefined;
}
