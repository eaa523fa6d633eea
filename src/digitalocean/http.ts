// How we reach the API: token and URL from the environment, and the kiota HTTP chain under dots
// (per-exchange timeout, bounded retries that never repeat a create).
import { createDigitalOceanClient, DigitalOceanApiKeyAuthenticationProvider, type DigitalOceanClient } from '@digitalocean/dots';
import type { RequestOption } from '@microsoft/kiota-abstractions';
import { FetchRequestAdapter, HttpClient, ParametersNameDecodingHandler, RedirectHandler, type Middleware } from '@microsoft/kiota-http-fetchlibrary';
import { DigitalOceanApiError } from './errors.js';
import type { DigitalOceanConfig } from './types.js';

export const DEFAULT_API_URL = 'https://api.digitalocean.com';

export interface ClientOptions {
  /** Abort one HTTP exchange after this long (default 30 s). */
  requestTimeoutMs?: number;
  /** Retries of a rate-limited (429) or unavailable (502-504, GET only) response (default 5). */
  maxRetries?: number;
  /** Give up instead of waiting when Retry-After asks for longer than this (default 60 s). */
  maxRetryWaitSeconds?: number;
  /** Told before each wait, so the command can print a progress line. */
  onRetry?: (info: { status: number; waitSeconds: number; attempt: number }) => void;
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
}

/** Token and API URL from the environment (a parameter, never process.env read here). */
export function resolveDigitalOceanConfig(env: Readonly<Record<string, string | undefined>>): DigitalOceanConfig {
  const token = (env['DIGITALOCEAN_TOKEN'] || env['DIGITALOCEAN_ACCESS_TOKEN'] || '').trim();
  if (token === '') {
    throw new DigitalOceanApiError(
      'config',
      'read credentials',
      'no DigitalOcean API token: set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN) to a token with write scope',
    );
  }
  const rawUrl = (env['DIGITALOCEAN_API_URL'] || DEFAULT_API_URL).trim();
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new DigitalOceanApiError('config', 'read credentials', `DIGITALOCEAN_API_URL is not a URL: ${JSON.stringify(rawUrl)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new DigitalOceanApiError('config', 'read credentials', `DIGITALOCEAN_API_URL must be http(s): ${JSON.stringify(rawUrl)}`);
  }
  return { token, apiUrl: rawUrl.replace(/\/+$/, '') };
}

export function buildClient(config: DigitalOceanConfig, options: ClientOptions): DigitalOceanClient {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const baseFetch = options.fetch ?? fetch;
  const fetchWithTimeout = (url: string, init: RequestInit): Promise<Response> =>
    baseFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const middlewares: Middleware[] = [
    new SafeRetryHandler(options),
    new RedirectHandler(),
    new ParametersNameDecodingHandler(),
    // HttpClient appends a CustomFetchHandler(fetchWithTimeout) as the last link.
  ];
  const httpClient = new HttpClient(fetchWithTimeout, ...middlewares);
  const adapter = new FetchRequestAdapter(
    new DigitalOceanApiKeyAuthenticationProvider(config.token),
    undefined,
    undefined,
    httpClient,
  );
  adapter.baseUrl = config.apiUrl;
  return createDigitalOceanClient(adapter);
}

/**
 * Retries 429 (the request was not processed, safe for any method) and 502-504 on GET only:
 * a POST that timed out at the gateway may have created a droplet, and a blind retry would
 * create a second one. Waits honour Retry-After, and each wait and the count are bounded.
 * Not kiota's RetryHandler: it sleeps on a private timer (no injected clock, no progress line) and cuts a long Retry-After to 180 s instead of giving up.
 */
class SafeRetryHandler implements Middleware {
  next: Middleware | undefined;
  private readonly maxRetries: number;
  private readonly maxWaitSeconds: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: ClientOptions) {
    this.maxRetries = options.maxRetries ?? 5;
    this.maxWaitSeconds = options.maxRetryWaitSeconds ?? 60;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async execute(url: string, requestInit: RequestInit, requestOptions?: Record<string, RequestOption>): Promise<Response> {
    if (!this.next) throw new Error('SafeRetryHandler needs a next middleware');
    for (let attempt = 0; ; attempt++) {
      const response = await this.next.execute(url, requestInit, requestOptions);
      const method = (requestInit.method ?? 'GET').toUpperCase();
      const retryable = response.status === 429 || (method === 'GET' && [502, 503, 504].includes(response.status));
      if (!retryable || attempt >= this.maxRetries) return response;
      const waitSeconds = retryAfterSeconds(response.headers.get('retry-after')) ?? Math.min(2 ** attempt, this.maxWaitSeconds);
      if (waitSeconds > this.maxWaitSeconds) return response;
      await response.body?.cancel();
      this.options.onRetry?.({ status: response.status, waitSeconds, attempt: attempt + 1 });
      await this.sleep(waitSeconds * 1000);
    }
  }
}

function retryAfterSeconds(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
