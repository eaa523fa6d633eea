import { X509Certificate, randomBytes } from 'node:crypto';
import { CliError } from '../errors.js';
import { firstAnswer, kvDelete, kvGet, kvPut, memberHealth, type ClientOptions } from '../etcd/client.js';
import { checkRenewalAnswer } from '../pki/csr.js';
import { keySpecOf, type KeySpec } from '../pki/key-types.js';
import { issueLeafForPublicKey, type IssuedCert, type KeyPairPem } from '../pki/mint.js';
import { certRequests, type SubjectAltName } from '../pki/profiles.js';
import type { ClusterPlan, MemberPlan } from '../plan.js';

/**
 * In-place renewal of member certificates, through etcd itself (docs/design.md, "Renewing a
 * member's certificate in place"). The keys live under this reserved prefix, one folder per
 * member; cloud-init/etcd-renew-agent.sh is the member's half.
 */
export const RENEW_PREFIX = '/etcd-cloudinit/renew/';

export const renewKeys = (member: string) => {
  const base = `${RENEW_PREFIX}${member}/`;
  return { agent: `${base}agent`, request: `${base}request`, response: `${base}response`, certificate: `${base}certificate` } as const;
};

/** How the agent names the cluster's key type to openssl (genpkey). */
function opensslKeySpec(spec: KeySpec): string {
  return spec.type === 'rsa' ? `rsa:${spec.bits}` : spec.type === 'ecdsa-p256' ? 'ec:P-256' : 'ec:P-384';
}

const sanList = (names: readonly SubjectAltName[]): string => names.map((name) => `${name.type === 'ip' ? 'IP' : 'DNS'}:${name.value}`).join(',');

/** Pure: the request a member's agent reads (`name=value` lines: a shell reads them with sed). */
export function renderRenewalRequest(nonce: string, commonName: string, subjectAltNames: readonly SubjectAltName[], keySpec: KeySpec): string {
  return `nonce=${nonce}\ncn=${commonName}\nsan=${sanList(subjectAltNames)}\nkey=${opensslKeySpec(keySpec)}\n`;
}

/** The agent's answer: `nonce=`, `signature=` lines, then the CSR exactly as signed. */
export function parseRenewalResponse(text: string): { nonce: string; signatureBase64: string; csrPem: string } {
  const match = /^nonce=([^\n]*)\nsignature=([^\n]*)\n([\s\S]*)$/.exec(text);
  if (!match) throw new Error('its answer is not nonce=, signature= and a CSR');
  return { nonce: match[1]!, signatureBase64: match[2]!, csrPem: match[3]! };
}

export interface InPlaceRenewal {
  readonly plan: ClusterPlan;
  readonly members: readonly MemberPlan[];
  /** pki/<member>.crt of each: the key the member must prove it holds. */
  readonly currentCerts: ReadonlyMap<string, string>;
  readonly ca: KeyPairPem;
  readonly now: Date;
  readonly serialSource?: () => string;
  readonly client: ClientOptions;
  readonly timeoutMs: number;
  readonly pollMs?: number;
  readonly progress: (line: string) => void;
}

export interface InPlaceOutcome {
  /** Certificates every named member now serves (keyPem ''). */
  readonly renewed: ReadonlyMap<string, IssuedCert>;
  /** Why a member was not renewed: refused (forged or wrong answer) or not finished in time. */
  readonly failed: ReadonlyMap<string, string>;
}

type Step = { phase: 'asked'; nonce: string } | { phase: 'signed'; nonce: string; cert: IssuedCert };

/** Members whose agent has not registered under the prefix: booted from user-data of an earlier release. */
export async function membersWithoutAgent(members: readonly MemberPlan[], endpoints: readonly string[], client: ClientOptions): Promise<string[]> {
  const missing: string[] = [];
  for (const member of members) {
    const { value } = await firstAnswer(endpoints, (endpoint) => kvGet(endpoint, renewKeys(member.name).agent, client));
    if (value === undefined) missing.push(member.name);
  }
  return missing;
}

/**
 * Asks each member for a CSR, checks and signs what comes back, and waits (bounded) until each
 * member serves its new certificate. The CA key is used here only; no private key of a member is
 * read or written.
 */
export async function renewMembersInPlace(run: InPlaceRenewal): Promise<InPlaceOutcome> {
  const endpoints = run.plan.members.map((member) => member.clientUrl);
  const onCluster = <T>(call: (endpoint: string) => Promise<T>): Promise<T> => firstAnswer(endpoints, call).then((answer) => answer.value);
  const requests = new Map(certRequests(run.plan).filter((request) => request.member !== undefined).map((request) => [request.member!.name, request]));
  const keySpec = keySpecOf(run.plan);
  const steps = new Map<string, Step>();
  const failed = new Map<string, string>();
  const renewed = new Map<string, IssuedCert>();

  for (const member of run.members) {
    const request = requests.get(member.name)!;
    const nonce = randomBytes(16).toString('hex');
    const keys = renewKeys(member.name);
    // An earlier run's answer or certificate must not be taken for this one's.
    await onCluster((endpoint) => kvDelete(endpoint, keys.response, run.client));
    await onCluster((endpoint) => kvDelete(endpoint, keys.certificate, run.client));
    await onCluster((endpoint) => kvPut(endpoint, keys.request, renderRenewalRequest(nonce, request.commonName, request.subjectAltNames, keySpec), run.client));
    steps.set(member.name, { phase: 'asked', nonce });
    run.progress(`${member.name}: asked its agent for a CSR (${keys.request})`);
  }

  const deadline = Date.now() + run.timeoutMs;
  while (steps.size > 0 && Date.now() < deadline) {
    for (const member of run.members) {
      const step = steps.get(member.name);
      if (!step) continue;
      const keys = renewKeys(member.name);
      try {
        if (step.phase === 'asked') {
          const text = await onCluster((endpoint) => kvGet(endpoint, keys.response, run.client));
          if (text === undefined) continue;
          const request = requests.get(member.name)!;
          let publicKey;
          try {
            const answer = parseRenewalResponse(text);
            publicKey = checkRenewalAnswer(
              { member: member.name, nonce: step.nonce, commonName: request.commonName, subjectAltNames: request.subjectAltNames, keySpec, currentCertPem: run.currentCerts.get(member.name)! },
              answer,
            );
          } catch (error) {
            failed.set(member.name, `refused its answer, signed nothing: ${(error as Error).message}`);
            steps.delete(member.name);
            // The agent stops at once: no request, nothing to answer.
            await onCluster((endpoint) => kvDelete(endpoint, keys.request, run.client));
            await onCluster((endpoint) => kvDelete(endpoint, keys.response, run.client));
            run.progress(`${member.name}: ${failed.get(member.name)}`);
            continue;
          }
          const cert = issueLeafForPublicKey(run.plan, member.name, run.ca, publicKey, { now: run.now, ...(run.serialSource ? { serialSource: run.serialSource } : {}) });
          await onCluster((endpoint) => kvPut(endpoint, keys.certificate, `nonce=${step.nonce}\n${cert.certPem}`, run.client));
          steps.set(member.name, { phase: 'signed', nonce: step.nonce, cert });
          run.progress(`${member.name}: signed its CSR (new key, serial ${serialOf(cert)}); waiting until it serves it`);
        } else {
          const served = (await memberHealth(member.clientUrl, run.client)).servedCertificate;
          if (served && served.serialNumber.toLowerCase() === serialOf(step.cert).toLowerCase()) {
            renewed.set(member.name, step.cert);
            steps.delete(member.name);
            run.progress(`${member.name}: serves its new certificate (serial ${serialOf(step.cert)})`);
          }
        }
      } catch {
        // A member or the cluster did not answer this time (a restart, a lost connection): ask again on the next pass.
      }
    }
    if (steps.size > 0) await new Promise((resolve) => setTimeout(resolve, run.pollMs ?? 500));
  }

  for (const [name, step] of steps) {
    const seconds = Math.round(run.timeoutMs / 1000);
    if (step.phase === 'asked') {
      failed.set(name, `its agent did not answer within ${seconds} s (on the member: systemctl status etcd-renew-agent.timer; journalctl -u etcd-renew-agent)`);
      await onCluster((endpoint) => kvDelete(endpoint, renewKeys(name).request, run.client)).catch(() => undefined);
    } else {
      failed.set(name, `it did not serve its new certificate (serial ${serialOf(step.cert)}) within ${seconds} s; run renew-certs --member ${name} again`);
    }
  }
  return { renewed, failed };
}

export const serialOf = (cert: { readonly certPem: string }): string => new X509Certificate(cert.certPem).serialNumber;

/** A member without an agent: what renew-certs says instead of renewing it. */
export function noAgentError(missing: readonly string[]): CliError {
  return new CliError(
    'check',
    [
      `member(s) ${missing.join(', ')} have no renewal agent (they were booted from user-data of an earlier release: nothing registered under ${RENEW_PREFIX}<member>/agent); nothing was renewed.`,
      `  Replace them with machines from this release's user-data: ${missing.map((name) => `etcd-cloudinit roll --member ${name}`).join('; ')}`,
      `  or renew them the old way, over SSH: etcd-cloudinit renew-certs --via-ssh-script`,
    ].join('\n'),
  );
}
