import { createInterface } from 'node:readline/promises';
import type { CommandContext } from './context.js';

/** A yes/no question on the terminal; undefined when stdin is not one (nobody can answer). */
async function askOnTerminal(question: string): Promise<boolean | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** Asks through the context (tests answer there), else on the terminal. */
export function confirm(context: CommandContext, question: string): Promise<boolean | undefined> {
  return (context.confirm ?? askOnTerminal)(question);
}
