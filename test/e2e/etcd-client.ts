import { runAllowingFailure, waitFor, type RunResult } from './exec.js';
import type { ClientIdentity } from './certificates.js';
import type { TestNetwork } from './netns.js';

// Host-side etcdctl (Debian's etcd-client) run inside the test namespace, as an operator would.
export function etcdctl(network: TestNetwork, identity: ClientIdentity, endpoints: readonly string[], args: readonly string[]): Promise<RunResult> {
  const tls = [`--cacert=${identity.cacert}`];
  if (identity.cert !== undefined) tls.push(`--cert=${identity.cert}`);
  if (identity.key !== undefined) tls.push(`--key=${identity.key}`);
  return runAllowingFailure(
    network.inside(['etcdctl', `--endpoints=${endpoints.join(',')}`, ...tls, '--dial-timeout=5s', '--command-timeout=15s', ...args]),
    { timeoutMs: 60_000 },
  );
}

export interface ListedMember {
  name: string;
  clientURLs?: string[];
}

// `member list -w json`: a member that has not published yet has no name and no client URLs.
export function startedMembers(memberListJson: string): ListedMember[] {
  const { members } = JSON.parse(memberListJson) as { members: ListedMember[] };
  return members.filter((member) => member.name !== '' && (member.clientURLs?.length ?? 0) > 0);
}

export interface TlsAttempt {
  accepted: boolean;
  curlExitCode: number;
  message: string;
}

// curl exit 7 (refused) or 28 (timeout) means no TLS server answered: that is not a TLS refusal.
export const CURL_NO_SERVER = new Set([7, 28]);

// An HTTPS request to a client (2379) or peer (2380) URL with the given identity.
export async function attemptTls(network: TestNetwork, url: string, identity: ClientIdentity): Promise<TlsAttempt> {
  const args = ['curl', '-sS', '--max-time', '15', '-o', '/dev/null', '--cacert', identity.cacert];
  if (identity.cert !== undefined) args.push('--cert', identity.cert);
  if (identity.key !== undefined) args.push('--key', identity.key);
  const result = await runAllowingFailure(network.inside([...args, `${url}/version`]), { timeoutMs: 30_000 });
  return { accepted: result.code === 0, curlExitCode: result.code, message: result.stderr.trim() };
}

// Under TCG on a busy host a leader election can stall a request for a while; checks retry, bounded.
export const SETTLE_MS = 3 * 60_000;

export async function untilSucceeds<T>(
  what: string,
  attempt: () => Promise<T>,
  succeeded: (result: T) => boolean,
  describe: (result: T) => string,
): Promise<T> {
  let last: T | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        last = await attempt();
        return succeeded(last) ? last : undefined;
      },
      { timeoutMs: SETTLE_MS, intervalMs: 5_000 },
    );
  } catch (error) {
    const detail = last === undefined ? 'none' : describe(last).trim().slice(-600);
    throw new Error(`${(error as Error).message}; last attempt: ${detail}`);
  }
}

export function etcdctlSucceeded(result: RunResult): boolean {
  return result.code === 0;
}

export function etcdctlOutput(result: RunResult): string {
  return `exit ${result.code}: ${result.stderr}`;
}
