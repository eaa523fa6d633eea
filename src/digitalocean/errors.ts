// A failed DigitalOcean call as one error type with a kind the commands act on.

export type DigitalOceanErrorKind =
  | 'config'
  | 'auth'
  | 'forbidden'
  | 'not-found'
  | 'invalid'
  | 'rate-limit'
  | 'server'
  | 'network'
  | 'unexpected';

/** A failed API call, with a message a user can act on; never carries the token. */
export class DigitalOceanApiError extends Error {
  constructor(
    readonly kind: DigitalOceanErrorKind,
    readonly operation: string,
    message: string,
    readonly status?: number,
    readonly apiErrorId?: string,
  ) {
    super(message);
    this.name = 'DigitalOceanApiError';
  }
}

/** The thing is not there (404): a delete that gets this finds it already gone. */
export const isNotFound = (error: unknown): error is DigitalOceanApiError => error instanceof DigitalOceanApiError && error.kind === 'not-found';

/** dots throws plain objects ({responseStatusCode, messageEscaped, id}); fetch throws TypeError. */
export function toApiError(operation: string, error: unknown, apiUrl: string): DigitalOceanApiError {
  if (error instanceof DigitalOceanApiError) return error;
  if (typeof error === 'object' && error !== null && typeof (error as { responseStatusCode?: unknown }).responseStatusCode === 'number') {
    const e = error as { responseStatusCode: number; messageEscaped?: unknown; message?: unknown; id?: unknown; responseHeaders?: unknown };
    const status = e.responseStatusCode;
    const apiMessage = typeof e.messageEscaped === 'string' && e.messageEscaped !== '' ? e.messageEscaped : undefined;
    const apiId = typeof e.id === 'string' && e.id !== '' ? e.id : undefined;
    const said = apiMessage ? `: ${apiMessage}` : '';
    const retryAfter = retryAfterFromHeaders(e.responseHeaders);
    switch (true) {
      case status === 401:
        return new DigitalOceanApiError('auth', operation, `${operation}: DigitalOcean rejected the API token (401${said}); check DIGITALOCEAN_TOKEN`, status, apiId);
      case status === 403:
        return new DigitalOceanApiError('forbidden', operation, `${operation}: the API token lacks permission (403${said}); it needs read and write scope`, status, apiId);
      case status === 404:
        return new DigitalOceanApiError('not-found', operation, `${operation}: not found (404${said})`, status, apiId);
      case status === 422 || status === 400:
        return new DigitalOceanApiError('invalid', operation, `${operation}: DigitalOcean refused the request (${status}${said})`, status, apiId);
      case status === 429:
        return new DigitalOceanApiError(
          'rate-limit',
          operation,
          `${operation}: rate limited by DigitalOcean (429${said})${retryAfter ? `; it asks to retry after ${retryAfter} s` : ''}. Wait and re-run the same command: it resumes`,
          status,
          apiId,
        );
      case status >= 500:
        return new DigitalOceanApiError('server', operation, `${operation}: DigitalOcean API error ${status}${said}; re-run the same command later: it resumes`, status, apiId);
      default:
        return new DigitalOceanApiError('unexpected', operation, `${operation}: unexpected HTTP ${status}${said}`, status, apiId);
    }
  }
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
    if (error.name === 'TimeoutError' || error.name === 'AbortError') {
      return new DigitalOceanApiError('network', operation, `${operation}: no answer from ${apiUrl} in time (request timed out)`);
    }
    if (error instanceof TypeError && /fetch failed|network/i.test(error.message)) {
      const detail = code ?? (cause instanceof Error ? cause.message : error.message);
      return new DigitalOceanApiError('network', operation, `${operation}: cannot reach the DigitalOcean API at ${apiUrl} (${detail})`);
    }
    return new DigitalOceanApiError('unexpected', operation, `${operation}: ${error.message}`);
  }
  return new DigitalOceanApiError('unexpected', operation, `${operation}: ${String(error)}`);
}

function retryAfterFromHeaders(headers: unknown): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (key.toLowerCase() !== 'retry-after') continue;
    const first = value instanceof Set ? [...value][0] : Array.isArray(value) ? value[0] : value;
    return first === undefined ? undefined : String(first);
  }
  return undefined;
}
