import { createPrivateKey, createPublicKey, generatePrime, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

/**
 * RSA key generation as FIPS 186-5 appendix A.1.3 describes it ("random probable primes"):
 * two independent primes of half the modulus size, e = 65537, d = e^-1 mod lcm(p-1, q-1).
 *
 * Why not `crypto.generateKeyPair('rsa')`: with e = 65537 and >= 2048 bits, OpenSSL 3 takes its
 * SP 800-56B path, which first searches for auxiliary primes (FIPS 186-4 B.3.6) and then for p
 * and q under those constraints. That costs about twice the time of plain random probable
 * primes and buys nothing for keys of these sizes; FIPS 186-5 allows both methods, and it is how
 * Go's crypto/rsa (cfssl, which etcd's own docs use) and OpenSSL 1.1 make keys. Each prime comes
 * from OpenSSL's own generator (`crypto.generatePrime`: BN_generate_prime_ex2 on the private
 * DRBG, trial division, then 64 Miller-Rabin rounds), and each search is a separate job in the
 * libuv pool, so one key's two primes are found on two cores at once.
 *
 * Only the arithmetic that puts the primes together is ours; it runs in BigInt, which is not
 * constant-time. That is acceptable here: keys are made once, offline, on the operator's
 * workstation, where no remote party can time it.
 */

export const PUBLIC_EXPONENT = 65_537n;
/** Enough rounds that a retry loop can never spin for ever: each check fails with odds far below 2^-16. */
const MAX_ATTEMPTS = 64;

const generatePrimeAsync = (bits: number): Promise<bigint> =>
  new Promise((resolve, reject) => {
    generatePrime(bits, { bigint: true }, (error, prime) => (error ? reject(error) : resolve(prime)));
  });

/** A prime p of `bits` bits with p >= sqrt(2) * 2^(bits-1) (the top two bits set) and gcd(p-1, e) = 1. */
async function rsaPrime(bits: number): Promise<bigint> {
  const floor = 3n << BigInt(bits - 2); // top two bits set: 1.5 * 2^(bits-1) > sqrt(2) * 2^(bits-1)
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const prime = await generatePrimeAsync(bits);
    if (prime >= floor && prime >> BigInt(bits) === 0n && (prime - 1n) % PUBLIC_EXPONENT !== 0n) return prime;
  }
  throw new Error(`no suitable ${bits}-bit RSA prime after ${MAX_ATTEMPTS} attempts`);
}

export interface RsaPrivateNumbers {
  readonly n: bigint;
  readonly e: bigint;
  readonly d: bigint;
  readonly p: bigint;
  readonly q: bigint;
  readonly dp: bigint;
  readonly dq: bigint;
  readonly qi: bigint;
}

/**
 * The private key numbers for primes p and q, or undefined when the pair fails a check of
 * FIPS 186-5 A.1.1 (|p - q| too small, d too small); the caller then draws new primes.
 */
export function rsaNumbers(p: bigint, q: bigint, bits: number): RsaPrivateNumbers | undefined {
  const half = BigInt(bits / 2);
  const distance = p > q ? p - q : q - p;
  if (distance <= 1n << (half - 100n)) return undefined;
  const n = p * q;
  if (n >> BigInt(bits - 1) !== 1n) return undefined;
  const lambda = lcm(p - 1n, q - 1n);
  const d = modInverse(PUBLIC_EXPONENT, lambda);
  if (d === undefined || d <= 1n << half) return undefined;
  const [big, small] = p > q ? [p, q] : [q, p];
  const qi = modInverse(small, big);
  if (qi === undefined) return undefined;
  return { n, e: PUBLIC_EXPONENT, d, p: big, q: small, dp: d % (big - 1n), dq: d % (small - 1n), qi };
}

/** A fresh RSA private key of `bits` bits (2048, 3072, 4096), checked by signing and verifying, as PKCS#8 PEM. */
export async function generateRsaKeyPem(bits: number): Promise<string> {
  if (bits % 2 !== 0 || bits < 2048) throw new Error(`RSA keys must have an even number of bits, at least 2048 (got ${bits})`);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const [p, q] = await Promise.all([rsaPrime(bits / 2), rsaPrime(bits / 2)]);
    const numbers = rsaNumbers(p, q, bits);
    if (!numbers) continue;
    const key = privateKeyFromNumbers(numbers);
    pairwiseConsistencyCheck(key);
    return key.export({ type: 'pkcs8', format: 'pem' }) as string;
  }
  throw new Error(`no suitable ${bits}-bit RSA key after ${MAX_ATTEMPTS} attempts`);
}

export function privateKeyFromNumbers(numbers: RsaPrivateNumbers): KeyObject {
  const b64 = (value: bigint) => bigintToBuffer(value).toString('base64url');
  return createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'RSA',
      n: b64(numbers.n),
      e: b64(numbers.e),
      d: b64(numbers.d),
      p: b64(numbers.p),
      q: b64(numbers.q),
      dp: b64(numbers.dp),
      dq: b64(numbers.dq),
      qi: b64(numbers.qi),
    },
  });
}

/** FIPS 140 pairwise consistency test: what the private key signs, the public key verifies. */
function pairwiseConsistencyCheck(key: KeyObject): void {
  const message = randomBytes(32);
  const signature = sign('sha256', message, key);
  if (!verify('sha256', message, createPublicKey(key), signature)) throw new Error('generated RSA key failed its pairwise consistency test');
}

function bigintToBuffer(value: bigint): Buffer {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function lcm(a: bigint, b: bigint): bigint {
  return (a / gcd(a, b)) * b;
}

/** a^-1 mod m by the extended Euclidean algorithm, or undefined if gcd(a, m) != 1. */
export function modInverse(a: bigint, m: bigint): bigint | undefined {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const quotient = oldR / r;
    [oldR, r] = [r, oldR - quotient * r];
    [oldS, s] = [s, oldS - quotient * s];
  }
  if (oldR !== 1n) return undefined;
  return ((oldS % m) + m) % m;
}
