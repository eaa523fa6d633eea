import { X509Certificate, createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { describeKeySpec, keySpecOfKey, sameKeySpec, type KeySpec } from './key-types.js';
import type { SubjectAltName } from './profiles.js';

/**
 * A member's certificate signing request (PKCS#10, RFC 2986) as renew-certs reads it. node-forge's
 * own CSR reader takes RSA keys only, so the structure is walked with its ASN.1 parser and the
 * signatures are checked with node:crypto, which takes RSA and EC keys alike.
 */
export interface ParsedCsr {
  readonly publicKey: KeyObject;
  readonly commonName: string | undefined;
  /** From the extensionRequest attribute; empty when the CSR asks for none. */
  readonly subjectAltNames: readonly SubjectAltName[];
}

const OID = {
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
} as const;

/** The digest of a CSR's signature algorithm; others are refused. */
const SIGNATURE_DIGESTS: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

const derOf = (node: forge.asn1.Asn1): Buffer => Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');
const children = (node: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] => (Array.isArray(node?.value) ? (node.value as forge.asn1.Asn1[]) : []);
const oidOf = (node: forge.asn1.Asn1 | undefined): string => (node && typeof node.value === 'string' ? forge.asn1.derToOid(node.value) : '');

function altNamesOf(extensionValue: string): SubjectAltName[] {
  return children(forge.asn1.fromDer(extensionValue)).flatMap((name): SubjectAltName[] => {
    const raw = typeof name.value === 'string' ? name.value : '';
    // GeneralName [2] dNSName, [7] iPAddress; anything else is kept as a name no profile has, so the request is refused.
    if (name.type === 2) return [{ type: 'dns', value: raw }];
    if (name.type === 7 && raw.length === 4) return [{ type: 'ip', value: [...Buffer.from(raw, 'binary')].join('.') }];
    return [{ type: 'dns', value: `<unsupported name type ${name.type}>` }];
  });
}

/** Parses a CSR and checks its self-signature; throws with the reason when it is not a well-formed, self-signed request. */
export function parseCsr(pem: string): ParsedCsr {
  const block = /-----BEGIN CERTIFICATE REQUEST-----([\s\S]+?)-----END CERTIFICATE REQUEST-----/.exec(pem);
  if (!block) throw new Error('not a PEM certificate request');
  let root: forge.asn1.Asn1;
  try {
    // decodeBitStrings off: forge would otherwise parse an ECDSA signature (itself DER) into ASN.1 nodes.
    root = (forge.asn1.fromDer as unknown as (bytes: string, options: { decodeBitStrings: boolean }) => forge.asn1.Asn1)(
      Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64').toString('binary'),
      { decodeBitStrings: false },
    );
  } catch (error) {
    throw new Error(`not a DER certificate request (${(error as Error).message})`);
  }
  const [info, algorithm, signature] = children(root);
  const [, subject, spki, attributes] = children(info);
  if (!info || !algorithm || !signature || !subject || !spki) throw new Error('not a PKCS#10 certificate request');
  const publicKey = createPublicKey({ key: derOf(spki), format: 'der', type: 'spki' });
  const digest = SIGNATURE_DIGESTS[oidOf(children(algorithm)[0])];
  if (!digest) throw new Error(`signature algorithm ${oidOf(children(algorithm)[0])} is not one etcd-cloudinit accepts`);
  const signatureBytes = Buffer.from((signature.value as string).slice(1), 'binary');
  if (!verify(digest, derOf(info), publicKey, signatureBytes)) throw new Error('its signature does not verify with its own public key');

  let commonName: string | undefined;
  for (const rdn of children(subject)) {
    for (const pair of children(rdn)) {
      const [type, value] = children(pair);
      if (oidOf(type) === OID.commonName) commonName = typeof value?.value === 'string' ? forge.util.decodeUtf8(value.value) : undefined;
    }
  }
  const subjectAltNames: SubjectAltName[] = [];
  for (const attribute of children(attributes)) {
    const [type, values] = children(attribute);
    if (oidOf(type) !== OID.extensionRequest) continue;
    for (const extension of children(children(values)[0])) {
      const parts = children(extension);
      if (oidOf(parts[0]) === OID.subjectAltName) subjectAltNames.push(...altNamesOf(parts.at(-1)!.value as string));
    }
  }
  return { publicKey, commonName, subjectAltNames };
}

/** What the workstation expects of one member's request: its name, addresses and key type, and the key it holds now. */
export interface ExpectedRequest {
  readonly member: string;
  readonly nonce: string;
  readonly commonName: string;
  readonly subjectAltNames: readonly SubjectAltName[];
  readonly keySpec: KeySpec;
  /** pki/<member>.crt: the member proves it holds this certificate's key. */
  readonly currentCertPem: string;
}

const sanText = (names: readonly SubjectAltName[]): string =>
  names
    .map((name) => `${name.type === 'ip' ? 'IP' : 'DNS'}:${name.value}`)
    .sort()
    .join(',');

/**
 * Checks a member's answer (its CSR and a signature over nonce + CSR made with its current key).
 * Returns the new public key, or throws with why it is refused: never signed then.
 */
export function checkRenewalAnswer(expected: ExpectedRequest, answer: { readonly nonce: string; readonly csrPem: string; readonly signatureBase64: string }): KeyObject {
  if (answer.nonce !== expected.nonce) throw new Error(`it answers nonce ${JSON.stringify(answer.nonce)}, not this run's ${expected.nonce}`);
  const currentKey = new X509Certificate(expected.currentCertPem).publicKey;
  const proof = Buffer.from(answer.signatureBase64, 'base64');
  if (proof.length === 0 || !verify('sha256', Buffer.from(`${answer.nonce}\n${answer.csrPem}`), currentKey, proof)) {
    throw new Error(`its signature is not made with the key of ${expected.member}'s current certificate`);
  }
  const csr = parseCsr(answer.csrPem);
  if (csr.publicKey.equals(currentKey)) throw new Error('its CSR carries the current public key, not a new one');
  const spec = keySpecOfKey(csr.publicKey);
  if (!sameKeySpec(spec, expected.keySpec)) throw new Error(`its key is ${spec ? describeKeySpec(spec) : 'of a type etcd-cloudinit does not mint'}, the cluster's profile says ${describeKeySpec(expected.keySpec)}`);
  if (csr.commonName !== expected.commonName) throw new Error(`its CSR names CN=${csr.commonName ?? '(none)'}, not ${expected.commonName}`);
  if (sanText(csr.subjectAltNames) !== sanText(expected.subjectAltNames)) {
    throw new Error(`its CSR names ${sanText(csr.subjectAltNames) || '(no addresses)'}, not ${expected.member}'s ${sanText(expected.subjectAltNames)}`);
  }
  return csr.publicKey;
}
