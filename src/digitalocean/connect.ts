import { CliError, EXIT_FAILURE } from '../errors.js';
import { createDigitalOceanApi, resolveDigitalOceanConfig } from './client.js';
import { recordingApi } from './dry-run.js';
import type { DigitalOceanApi } from './types.js';

/**
 * The API every command that calls DigitalOcean uses: token and URL from the environment, retries
 * reported as progress lines, and with `dryRun` the recording wrapper around it (the flows take either).
 */
export function connectDigitalOcean(env: Readonly<Record<string, string | undefined>>, progress: (line: string) => void, dryRun: boolean): DigitalOceanApi {
  let config;
  try {
    config = resolveDigitalOceanConfig(env);
  } catch (error) {
    throw new CliError('preflight', (error as Error).message, EXIT_FAILURE);
  }
  const real = createDigitalOceanApi(config, {
    onRetry: ({ status, waitSeconds, attempt }) => progress(`api: HTTP ${status}, retrying in ${waitSeconds} s (attempt ${attempt})`),
  });
  return dryRun ? recordingApi(real, progress) : real;
}
