/** The phase of a command that failed; printed as a prefix so a user knows where to look. */
export type Phase = 'parse' | 'validate' | 'plan' | 'mint' | 'render' | 'check' | 'write' | 'api' | 'preflight' | 'catch-up';

/** Exit code for a user error in how the command was called (bad flag, bad value). */
export const EXIT_USAGE = 2;
/** Exit code for every other failure. */
export const EXIT_FAILURE = 1;

/**
 * An error meant for the user: one line naming the phase, the field and the value.
 * Anything else that escapes a command is a bug and is printed with its stack.
 */
export class CliError extends Error {
  constructor(
    readonly phase: Phase,
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(`[${phase}] ${message}`);
    this.name = 'CliError';
  }
}

export function usageError(phase: Phase, message: string): CliError {
  return new CliError(phase, message, EXIT_USAGE);
}

/**
 * The refusal of every command while a roll or repair holds the cluster (roll.json's `current`):
 * a refusal of the folder's state, not of how the command was called, so exit 1 (EXIT_FAILURE)
 * from add-member, remove-member, renew-certs, roll and repair alike. `next` says what to do.
 */
export function rollInProgressError(clusterName: string, current: { readonly operation: string; readonly startedAt: string }, next: string): CliError {
  return new CliError('preflight', `a ${current.operation} of cluster ${clusterName} is in progress (started ${current.startedAt}); ${next}, or undo it with '${current.operation} --abort'`, EXIT_FAILURE);
}
