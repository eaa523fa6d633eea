import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { CliError } from '../errors.js';
import type { ClusterPlan } from '../plan.js';
import { certRequests, type CertRequest, type SubjectAltName } from './profiles.js';
import { mayCertSign, subjectName } from './der.js';
import { generateKeyPem, keyIdentifier, keySpecOf, keySpecOfKey, sameKeySpec, signatureAlgorithmFor, subjectPublicKeyInfo, type KeySpec } from './key-types.js';

/** A private key as PKCS#8 PEM. Generation is injectable so golden tests use fixed keys. */
export type KeySource = (key: KeySpec, fileBase: string) => Promise<string>;

/**
 * RSA keys from OpenSSL's prime generator (see rsa.ts), EC keys from OpenSSL. Every RSA prime search
 * is its own job in the libuv pool, so the keys of all members, and the two primes of each key, are found in parallel.
 */
export const nativeKeySource: KeySource = (key) => generateKeyPem(key);

/** 16 random bytes with the top bit clear: a positive serial, unique per certificate. */
/**
 * A certificate serial from 16 random bytes, as a positive DER INTEGER in its shortest form: the
 * first byte in 0x40..0x7f (126 random bits). Clearing only the top bit let the first byte be 0x00
 * (1 draw in 128), and a 0x00 before a byte below 0x80 is a non-minimal INTEGER that OpenSSL 3
 * refuses to parse: about 1 certificate in 256 came out unreadable.
 */
export function serialFromBytes(bytes: Buffer): string {
  const copy = Buffer.from(bytes);
  copy[0] = (copy[0]! & 0x3f) | 0x40;
  return copy.toString('hex');
}

export const randomSerial = (): string => serialFromBytes(randomBytes(16));

export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface IssuedCert extends KeyPairPem {
  readonly fileBase: string;
  readonly profileId: string;
  readonly member: string | undefined;
  /** Set for a named client certificate (profile `client`). */
  readonly client?: string | undefined;
  readonly sha256Fingerprint: string;
  readonly notAfter: string;
  /** True when an existing, still-matching certificate was kept. */
  readonly reused: boolean;
}

export interface ClusterPki {
  readonly ca: IssuedCert;
  readonly admin: IssuedCert;
  readonly members: ReadonlyMap<string, IssuedCert>;
  /** In the order of certRequests(): CA, members, admin. */
  readonly all: readonly IssuedCert[];
}

export interface MintOptions {
  readonly now: Date;
  readonly keySource?: KeySource;
  readonly serialSource?: () => string;
  /** Certificates and keys already on disk, by file base (`ca`, `etcd1`, `admin`). */
  readonly existing?: ReadonlyMap<string, Partial<KeyPairPem>>;
  /** Re-mint every member and admin certificate even if the existing one still matches. The CA is always kept. */
  readonly force?: boolean;
  /** A leaf expiring within this many days is re-minted on a re-run. */
  readonly renewWithinDays?: number;
}

const DAY_MS = 86_400_000;

/**
 * Mints (or keeps) every certificate of the plan. Keys are generated concurrently; signing uses
 * Node's native crypto, node-forge only assembles the X.509 structures.
 */
export async function mintPki(plan: ClusterPlan, options: MintOptions): Promise<ClusterPki> {
  const keySource = options.keySource ?? nativeKeySource;
  const serialSource = options.serialSource ?? randomSerial;
  const [caRequest, ...leafRequests] = certRequests(plan);
  if (!caRequest || caRequest.profile.issuer !== null) throw new Error('the CA profile must come first');

  const existingCa = loadExistingCa(caRequest, plan, options);
  // A re-run issues leaves for --cert-days: the CA must outlive them, whether or not this run re-mints one.
  if (existingCa) checkCaOutlives(existingCa.certPem, Math.max(...leafRequests.map((request) => request.validityDays)), options.now);
  const kept = new Map<string, KeyPairPem>();
  if (existingCa && !options.force) {
    for (const request of leafRequests) {
      const existing = options.existing?.get(request.fileBase);
      if (existing?.certPem && existing.keyPem && leafStillMatches(request, existing as KeyPairPem, existingCa, plan, options)) {
        kept.set(request.fileBase, existing as KeyPairPem);
      }
    }
  }
  // Every missing key is generated at once: key generation is the slow part and runs in parallel.
  const toMint = [...(existingCa ? [] : [caRequest]), ...leafRequests.filter((request) => !kept.has(request.fileBase))];
  const keys = new Map(await Promise.all(toMint.map(async (request) => [request.fileBase, await keySource(keySpecOf(plan), request.fileBase)] as const)));

  const ca = existingCa ?? mintCa(caRequest, keys.get(caRequest.fileBase)!, options.now, serialSource());
  const caKey = createPrivateKey(ca.keyPem);
  const leaves = leafRequests.map((request) => {
    const keptPair = kept.get(request.fileBase);
    if (keptPair) return describe(request, keptPair, true);
    const keyPem = keys.get(request.fileBase)!;
    const certPem = issue(request, keyPem, { certPem: ca.certPem, key: caKey }, options.now, serialSource());
    return describe(request, { certPem, keyPem }, false);
  });

  const all = [ca, ...leaves];
  const admin = all.find((cert) => cert.profileId === 'admin');
  if (!admin) throw new Error('no admin profile');
  const members = new Map(all.filter((cert) => cert.member !== undefined).map((cert) => [cert.member!, cert]));
  return { ca, admin, members, all };
}

/** The CA on disk, if any, checked (checkCa). It is never replaced: a broken pair is an error for the operator to fix. */
function loadExistingCa(request: CertRequest, plan: ClusterPlan, options: MintOptions): IssuedCert | undefined {
  const existing = options.existing?.get(request.fileBase);
  if (existing?.keyPem && existing.certPem) {
    checkCa(existing as KeyPairPem, plan, options.now);
    return describe(request, existing as KeyPairPem, true);
  }
  if (existing?.certPem || existing?.keyPem) {
    throw new CliError(
      'mint',
      `${plan.outDir}/pki has ${existing.certPem ? 'ca.crt without ca.key' : 'ca.key without ca.crt'}; restore the pair or remove the folder to start a new cluster`,
    );
  }
  return undefined;
}

/** A PEM file of pki/ that cannot be parsed: the error names it, and nothing is written. */
function damaged(file: string, what: string): CliError {
  return new CliError('mint', `${file}: is not ${what} (damaged or truncated?); restore it from a backup of the folder`);
}

function parseCertificate(file: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw damaged(file, 'a PEM certificate');
  }
}

function parsePrivateKey(file: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw damaged(file, 'an unencrypted PEM private key');
  }
}

/** A certificate's date as messages show it (certificates carry whole seconds). */
const isoDate = (date: Date) => date.toISOString().replace('.000Z', 'Z');

/**
 * Before the CA signs anything: it is a CA (basicConstraints CA:TRUE, keyUsage keyCertSign), with
 * a key issue() can sign with (RSA, ECDSA P-256/P-384: whatever --key-type the leaves have), the
 * key in pki/ca.key, and valid now.
 */
function checkCa(ca: KeyPairPem, plan: ClusterPlan, now: Date): KeyObject {
  const cert = parseCertificate('pki/ca.crt', ca.certPem);
  const key = parsePrivateKey('pki/ca.key', ca.keyPem);
  if (!cert.ca) throw new CliError('mint', 'pki/ca.crt: is not a CA certificate (basicConstraints CA:TRUE is missing); restore the CA certificate from a backup of the folder');
  if (!keySpecOfKey(cert.publicKey)) {
    const { asymmetricKeyType: type, asymmetricKeyDetails: details } = cert.publicKey;
    throw new CliError(
      'mint',
      `pki/ca.crt: its key is ${type}${details?.namedCurve ? ` ${details.namedCurve}` : details?.modulusLength ? ` ${details.modulusLength}-bit` : ''}; etcd-cloudinit signs with RSA (2048, 3072, 4096) and ECDSA P-256/P-384 CAs only`,
    );
  }
  let certSign: boolean;
  try {
    certSign = mayCertSign(cert.raw);
  } catch {
    throw damaged('pki/ca.crt', 'a certificate etcd-cloudinit can read');
  }
  if (!certSign) throw new CliError('mint', 'pki/ca.crt: may not sign certificates (its keyUsage lacks keyCertSign); restore the CA certificate from a backup of the folder');
  if (!cert.checkPrivateKey(key)) {
    throw new CliError('mint', `pki/ca.key does not belong to pki/ca.crt in ${plan.outDir}; restore the matching pair (the CA is never replaced automatically)`);
  }
  const validFrom = new Date(cert.validFrom);
  const validTo = new Date(cert.validTo);
  if (validTo.getTime() <= now.getTime()) {
    throw new CliError(
      'mint',
      `pki/ca.crt: the CA expired on ${isoDate(validTo)} (valid from ${isoDate(validFrom)}); what it signs would not verify. ` +
        'It is never replaced automatically: a new CA means a new cluster folder and new user-data for every member',
    );
  }
  if (validFrom.getTime() > now.getTime()) {
    throw new CliError('mint', `pki/ca.crt: the CA is not valid before ${isoDate(validFrom)}, and it is ${isoDate(now)} here; check this machine's clock`);
  }
  return key;
}

/**
 * The CA must outlive what it issues: a certificate valid after its CA expires would not verify
 * then. Refused with the dates rather than capped, so no certificate is shorter than asked for.
 */
function checkCaOutlives(caPem: string, validityDays: number, now: Date): void {
  const caValidTo = new Date(new X509Certificate(caPem).validTo);
  if (now.getTime() + validityDays * DAY_MS <= caValidTo.getTime()) return;
  const daysLeft = Math.floor((caValidTo.getTime() - now.getTime()) / DAY_MS);
  throw new CliError(
    'mint',
    `pki/ca.crt: the CA expires on ${isoDate(caValidTo)}, in ${daysLeft} day(s): a certificate issued now for ${validityDays} days would outlive it. ` +
      `${daysLeft >= 1 ? `Pass --cert-days ${daysLeft} or less, or start` : 'Start'} a new CA (a new cluster folder and new user-data for every member)`,
  );
}

function mintCa(request: CertRequest, keyPem: string, now: Date, serialHex: string): IssuedCert {
  const certPem = issue(request, keyPem, { certPem: undefined, key: createPrivateKey(keyPem) }, now, serialHex);
  return describe(request, { certPem, keyPem }, false);
}

function describe(request: CertRequest, pair: KeyPairPem, reused: boolean): IssuedCert {
  const cert = new X509Certificate(pair.certPem);
  return {
    ...pair,
    fileBase: request.fileBase,
    profileId: request.profile.id,
    member: request.member?.name,
    client: request.client?.name,
    sha256Fingerprint: cert.fingerprint256,
    notAfter: new Date(cert.validTo).toISOString(),
    reused,
  };
}

/** Subject alternative names as Node prints them (`IP Address:10.0.0.1, DNS:localhost`). */
export function formatSubjectAltNames(names: readonly SubjectAltName[]): string {
  return names.map((san) => (san.type === 'ip' ? `IP Address:${san.value}` : `DNS:${san.value}`)).join(', ');
}

const EXT_KEY_USAGE_OIDS = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' } as const;

/** A kept certificate must still be exactly what the profile asks for, from this CA, with time left. */
function leafStillMatches(request: CertRequest, pair: KeyPairPem, ca: IssuedCert, plan: ClusterPlan, options: MintOptions): boolean {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pair.certPem);
    if (!cert.checkPrivateKey(createPrivateKey(pair.keyPem))) return false;
  } catch {
    return false;
  }
  const caCert = new X509Certificate(ca.certPem);
  const renewBefore = options.now.getTime() + (options.renewWithinDays ?? 30) * DAY_MS;
  const wantedUsages = request.profile.extKeyUsage.map((usage) => EXT_KEY_USAGE_OIDS[usage]).sort();
  return (
    cert.verify(caCert.publicKey) &&
    cert.issuer === caCert.subject &&
    cert.subject.split('\n').includes(`CN=${request.commonName}`) &&
    (cert.subjectAltName ?? '') === formatSubjectAltNames(request.subjectAltNames) &&
    JSON.stringify([...(cert.keyUsage ?? [])].sort()) === JSON.stringify(wantedUsages) &&
    new Date(cert.validTo).getTime() > renewBefore &&
    sameKeySpec(keySpecOfKey(cert.publicKey), keySpecOf(plan))
  );
}

/** Exported by node-forge at runtime but missing from its type definitions. */
const forgeTbs = forge.pki as unknown as { getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 };

/**
 * forge writes only RSA keys into a certificate: it is given this stand-in, and the
 * SubjectPublicKeyInfo Node exports for the real key (RSA or EC) replaces it in the TBS.
 */
const STAND_IN_KEY = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('1', 10), new forge.jsbn.BigInteger('65537', 10));

/** Places in the TBSCertificate of a v3 certificate. */
const TBS = { signature: 2, issuer: 3, subjectPublicKeyInfo: 6 } as const;

interface Issuer {
  /** undefined when the certificate signs itself (the CA). */
  readonly certPem: string | undefined;
  readonly key: KeyObject;
}

function toForgeAltName(san: SubjectAltName): { type: number; ip?: string; value?: string } {
  return san.type === 'ip' ? { type: 7, ip: san.value } : { type: 2, value: san.value };
}

const spkiDerOf = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });

/**
 * Builds the X.509 structure with node-forge and signs its TBSCertificate with Node's crypto,
 * with the signature algorithm of the issuer's key (key-types.ts), whatever the subject's key is.
 */
export function issue(request: CertRequest, keyPem: string, issuer: Issuer, now: Date, serialHex: string): string {
  const { asn1 } = forge;
  const subjectSpki = spkiDerOf(createPublicKey(keyPem));
  const issuerCert = issuer.certPem ? new X509Certificate(issuer.certPem) : undefined;
  const issuerSpki = issuerCert ? spkiDerOf(issuerCert.publicKey) : subjectSpki;
  const signature = signatureAlgorithmFor(issuer.key);

  const cert = forge.pki.createCertificate();
  cert.publicKey = STAND_IN_KEY;
  cert.serialNumber = serialHex;
  // Backdated a little so a node whose clock lags the workstation's still accepts it.
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(now.getTime() + request.validityDays * DAY_MS);
  const subject = [
    { name: 'commonName', value: request.commonName },
    ...(request.organization !== undefined ? [{ name: 'organizationName', value: request.organization }] : []),
  ];
  cert.setSubject(subject);
  // The issuer Name is copied from the issuer's certificate below; forge needs one meanwhile.
  cert.setIssuer(subject);

  const keyUsage = Object.fromEntries(request.profile.keyUsage.map((usage) => [usage, true]));
  const extensions: Record<string, unknown>[] = [
    { name: 'basicConstraints', cA: request.profile.isCa, critical: true, ...(request.profile.isCa ? { pathLenConstraint: 0 } : {}) },
    { name: 'keyUsage', critical: true, ...keyUsage },
  ];
  if (request.profile.extKeyUsage.length > 0) {
    extensions.push({ name: 'extKeyUsage', ...Object.fromEntries(request.profile.extKeyUsage.map((usage) => [usage, true])) });
  }
  if (request.subjectAltNames.length > 0) {
    extensions.push({ name: 'subjectAltName', altNames: request.subjectAltNames.map(toForgeAltName) });
  }
  extensions.push({ name: 'subjectKeyIdentifier', value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, keyIdentifier(subjectSpki).toString('binary')) });
  extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifier(issuerSpki).toString('binary') });
  cert.setExtensions(extensions);

  // Replaced below by the issuer key's AlgorithmIdentifier; forge needs an OID to write one.
  cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption!;
  const tbs = forgeTbs.getTBSCertificate(cert);
  const fields = tbs.value as forge.asn1.Asn1[];
  fields[TBS.signature] = signature.algorithmIdentifier;
  if (issuerCert) fields[TBS.issuer] = subjectName(issuerCert.raw);
  fields[TBS.subjectPublicKeyInfo] = subjectPublicKeyInfo(subjectSpki);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signatureValue = sign(signature.digest, tbsDer, issuer.key);
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    signature.algorithmIdentifier,
    // The signature as a BIT STRING with no unused bits.
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\x00${signatureValue.toString('binary')}`),
  ]);
  const der = Buffer.from(asn1.toDer(certificate).getBytes(), 'binary');
  return new X509Certificate(der).toString();
}

/** The certificates on disk, described as mintPki describes them; nothing is minted. A file that does not parse is a [mint] error naming it. */
export function readClusterPki(plan: ClusterPlan, existing: ReadonlyMap<string, Partial<KeyPairPem>>): ClusterPki {
  const described = certRequests(plan).map((request) => {
    const pair = existing.get(request.fileBase);
    // A member renewed in place made its own key: the folder has its certificate only (keyPem '').
    const keyOptional = request.profile.id === 'member';
    if (!pair?.certPem || (!pair.keyPem && !keyOptional)) {
      throw new CliError('parse', `pki/${request.fileBase}.${pair?.certPem ? 'key' : 'crt'}: missing in ${plan.outDir}/pki`);
    }
    parseCertificate(`pki/${request.fileBase}.crt`, pair.certPem);
    if (pair.keyPem) parsePrivateKey(`pki/${request.fileBase}.key`, pair.keyPem);
    return describe(request, { certPem: pair.certPem, keyPem: pair.keyPem ?? '' }, true);
  });
  const [ca, ...leaves] = described;
  const admin = leaves.find((cert) => cert.profileId === 'admin');
  if (!ca || !admin) throw new Error('the profiles lack a CA or admin certificate');
  return { ca, admin, members: new Map(leaves.filter((cert) => cert.member !== undefined).map((cert) => [cert.member!, cert])), all: described };
}

/** The cluster's certificates with re-issued ones in place of those with the same file base (a renewal, a roll's last step). */
export function withReissued(pki: ClusterPki, reissued: readonly IssuedCert[]): ClusterPki {
  const byFileBase = new Map(reissued.map((cert) => [cert.fileBase, cert]));
  const current = (cert: IssuedCert) => byFileBase.get(cert.fileBase) ?? cert;
  return { ca: pki.ca, admin: current(pki.admin), members: new Map([...pki.members].map(([name, cert]) => [name, current(cert)])), all: pki.all.map(current) };
}

export interface IssueLeafOptions {
  readonly now: Date;
  readonly keySource?: KeySource;
  readonly serialSource?: () => string;
  /** Certify this key instead of generating one (a renewal that keeps the key). */
  readonly keyPem?: string;
}

/**
 * Issues one leaf of the plan (`etcd4`, `admin`) with the existing CA, from the same profile
 * table as mintPki: same key usages, SANs and validity. The CA itself is only read, and checked
 * as mintPki checks it.
 */
export async function issueLeaf(plan: ClusterPlan, fileBase: string, ca: KeyPairPem, options: IssueLeafOptions): Promise<IssuedCert> {
  const request = certRequests(plan).find((candidate) => candidate.fileBase === fileBase);
  if (!request || request.profile.issuer === null) throw new Error(`no leaf certificate ${fileBase} in the plan`);
  const caKey = checkCa(ca, plan, options.now);
  checkCaOutlives(ca.certPem, request.validityDays, options.now);
  if (options.keyPem !== undefined) parsePrivateKey(`pki/${fileBase}.key`, options.keyPem);
  const keyPem = options.keyPem ?? (await (options.keySource ?? nativeKeySource)(keySpecOf(plan), fileBase));
  const certPem = issue(request, keyPem, { certPem: ca.certPem, key: caKey }, options.now, (options.serialSource ?? randomSerial)());
  return describe(request, { certPem, keyPem }, false);
}

/**
 * Certifies a public key the workstation never held the private half of (a member's in-place
 * renewal: the member made the key), with the same profile as issueLeaf. keyPem stays empty.
 */
export function issueLeafForPublicKey(plan: ClusterPlan, fileBase: string, ca: KeyPairPem, publicKey: KeyObject, options: Omit<IssueLeafOptions, 'keyPem' | 'keySource'>): IssuedCert {
  const request = certRequests(plan).find((candidate) => candidate.fileBase === fileBase);
  if (!request || request.profile.issuer === null) throw new Error(`no leaf certificate ${fileBase} in the plan`);
  const caKey = checkCa(ca, plan, options.now);
  checkCaOutlives(ca.certPem, request.validityDays, options.now);
  const spkiPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const certPem = issue(request, spkiPem, { certPem: ca.certPem, key: caKey }, options.now, (options.serialSource ?? randomSerial)());
  return describe(request, { certPem, keyPem: '' }, false);
}
