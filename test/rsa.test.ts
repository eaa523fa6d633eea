import { execFile } from 'node:child_process';
import { createPrivateKey, generatePrimeSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PUBLIC_EXPONENT, generateRsaKeyPem, modInverse, privateKeyFromNumbers, rsaNumbers } from '../src/pki/rsa.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'etcd-cloudinit-rsa-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `openssl pkey -check`: RSA_check_key tests that p and q are prime, n = pq, and d, dP, dQ, qInv fit them. */
async function opensslCheck(pem: string, name: string): Promise<string> {
  const file = join(dir, `${name}.key`);
  writeFileSync(file, pem, { mode: 0o600 });
  const { stdout } = await execFileAsync('openssl', ['pkey', '-in', file, '-check', '-noout']);
  return stdout.trim();
}

describe('RSA keys from random probable primes', () => {
  it.each([2048, 3072, 4096])('makes a %i-bit key that openssl checks as valid', async (bits) => {
    const pem = await generateRsaKeyPem(bits);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const details = createPrivateKey(pem).asymmetricKeyDetails!;
    expect(details.modulusLength).toBe(bits);
    expect(details.publicExponent).toBe(PUBLIC_EXPONENT);
    expect(await opensslCheck(pem, `valid-${bits}`)).toBe('Key is valid');
  });

  it('never returns the same key twice', async () => {
    const [a, b] = await Promise.all([generateRsaKeyPem(2048), generateRsaKeyPem(2048)]);
    expect(a).not.toBe(b);
  });

  it('gives numbers that satisfy the RSA identities', () => {
    let numbers;
    for (let attempt = 0; attempt < 8 && !numbers; attempt++) numbers = rsaNumbers(generatePrimeSync(1024, { bigint: true }), generatePrimeSync(1024, { bigint: true }), 2048);
    expect(numbers).toBeDefined();
    const { n, e, d, p, q, dp, dq, qi } = numbers!;
    expect(p * q).toBe(n);
    const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
    expect((e * d) % (((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n))).toBe(1n);
    expect(p).toBeGreaterThan(q);
    expect((e * dp) % (p - 1n)).toBe(1n);
    expect((e * dq) % (q - 1n)).toBe(1n);
    expect((qi * q) % p).toBe(1n);
    expect(n.toString(2)).toHaveLength(2048);
  });

  it('refuses primes that are too close together, or equal', () => {
    const p = generatePrimeSync(1024, { bigint: true });
    expect(rsaNumbers(p, p, 2048)).toBeUndefined();
  });

  it('is a real check: openssl finds a key with a broken CRT value: openssl finds a tampered key invalid', async () => {
    let numbers;
    for (let attempt = 0; attempt < 8 && !numbers; attempt++) numbers = rsaNumbers(generatePrimeSync(1024, { bigint: true }), generatePrimeSync(1024, { bigint: true }), 2048);
    const tampered = privateKeyFromNumbers({ ...numbers!, dp: numbers!.dp + 2n }).export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(opensslCheck(tampered, 'tampered')).rejects.toThrow(/dmp1 not congruent to d/);
  });

  it.each([
    [3n, 11n, 4n],
    [10n, 17n, 12n],
    [65_537n, 3_120n, modInverseReference(65_537n, 3_120n)],
  ])('inverts %s mod %s', (a, m, want) => {
    expect(modInverse(a, m)).toBe(want);
    expect((a * modInverse(a, m)!) % m).toBe(1n);
  });

  it('has no inverse when the numbers share a factor', () => {
    expect(modInverse(6n, 9n)).toBeUndefined();
  });
});

/** Brute force, for small moduli only. */
function modInverseReference(a: bigint, m: bigint): bigint {
  for (let x = 1n; x < m; x++) if ((a * x) % m === 1n) return x;
  throw new Error('no inverse');
}
