import { createHash, generateKeyPair, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { parseDer } from './der.js';
import { generateRsaKeyPem } from './rsa.js';

/**
 * What differs between the key types etcd-cloudinit mints (keys.ts names them): how a key is
 * generated, and how a certificate is signed with one.
 */
import type { KeyType, RsaKeySize } from '../keys.js';

export { KEY_TYPES, DEFAULT_KEY_TYPE, DEFAULT_RSA_KEY_SIZE, type KeyType, type RsaKeySize } from '../keys.js';

/** One key to mint: the type and, for RSA, the modulus size. */
export type KeySpec = { readonly type: 'rsa'; readonly bits: RsaKeySize } | { readonly type: 'ecdsa-p256' | 'ecdsa-p384' };

type EcdsaKeyType = Exclude<KeyType, 'rsa'>;

const CURVES: Record<EcdsaKeyType, { readonly namedCurve: string; readonly digest: 'sha256' | 'sha384'; readonly signatureOid: string; readonly label: string }> = {
  'ecdsa-p256': { namedCurve: 'prime256v1', digest: 'sha256', signatureOid: '1.2.840.10045.4.3.2', label: 'ECDSA P-256' },
  'ecdsa-p384': { namedCurve: 'secp384r1', digest: 'sha384', signatureOid: '1.2.840.10045.4.3.3', label: 'ECDSA P-384' },
};

const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';

/** The key of a plan (keySize only counts for RSA). */
export const keySpecOf = (plan: { readonly keyType: KeyType; readonly keySize: RsaKeySize }): KeySpec =>
  plan.keyType === 'rsa' ? { type: 'rsa', bits: plan.keySize } : { type: plan.keyType };

/** `RSA-4096`, `ECDSA P-256`: for messages. */
export const describeKeySpec = (spec: KeySpec): string => (spec.type === 'rsa' ? `RSA-${spec.bits}` : CURVES[spec.type].label);

export const sameKeySpec = (a: KeySpec | undefined, b: KeySpec): boolean => a !== undefined && describeKeySpec(a) === describeKeySpec(b);

/** What an existing key is, or undefined for a key etcd-cloudinit does not mint (Ed25519, another curve, odd RSA sizes). */
export function keySpecOfKey(key: KeyObject): KeySpec | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details?.modulusLength;
    return bits === 2048 || bits === 3072 || bits === 4096 ? { type: 'rsa', bits } : undefined;
  }
  if (key.asymmetricKeyType === 'ec') {
    const type = (Object.keys(CURVES) as EcdsaKeyType[]).find((candidate) => CURVES[candidate].namedCurve === details?.namedCurve);
    return type ? { type } : undefined;
  }
  return undefined;
}

/** A fresh private key as PKCS#8 PEM (Go, and so etcd, reads PKCS#8 RSA and EC keys). */
export function generateKeyPem(spec: KeySpec): Promise<string> {
  if (spec.type === 'rsa') return generateRsaKeyPem(spec.bits);
  return new Promise((resolve, reject) => {
    generateKeyPair('ec', { namedCurve: CURVES[spec.type].namedCurve, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }, (error, _publicKey, privateKey) =>
      error ? reject(error) : resolve(privateKey),
    );
  });
}

/** How a certificate signed by `issuerKey` is signed: the digest for crypto.sign, and the AlgorithmIdentifier for the TBS and the Certificate. */
export interface SignatureAlgorithm {
  readonly digest: 'sha256' | 'sha384';
  readonly algorithmIdentifier: forge.asn1.Asn1;
}

export function signatureAlgorithmFor(issuerKey: KeyObject): SignatureAlgorithm {
  const spec = keySpecOfKey(issuerKey);
  if (!spec) throw new Error(`cannot sign with a ${issuerKey.asymmetricKeyType} key`);
  const { asn1 } = forge;
  const oid = (value: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(value).getBytes());
  if (spec.type === 'rsa') {
    // RFC 4055: sha256WithRSAEncryption carries NULL parameters.
    return { digest: 'sha256', algorithmIdentifier: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [oid(SHA256_WITH_RSA), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')]) };
  }
  // RFC 5758: ecdsa-with-SHA256/384 have their parameters absent.
  const curve = CURVES[spec.type];
  return { digest: curve.digest, algorithmIdentifier: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [oid(curve.signatureOid)]) };
}

/** A DER SubjectPublicKeyInfo as a forge ASN.1 node, its BIT STRING left as bytes (an EC point is not ASN.1). */
export function subjectPublicKeyInfo(spkiDer: Buffer): forge.asn1.Asn1 {
  return parseDer(spkiDer);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING (for RSA, what forge computes too). */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const bitString = (subjectPublicKeyInfo(spkiDer).value as forge.asn1.Asn1[])[1]!.value as string;
  // The first byte counts unused bits (0 for a key): not part of the key.
  return createHash('sha1').update(Buffer.from(bitString.slice(1), 'binary')).digest();
}
