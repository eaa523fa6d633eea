import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import type { KeySource } from '../../src/pki/mint.js';
import { REPO_ROOT } from './cli.js';

export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

/** Fixed keys by file base (test/fixtures/keys/<base>.key), so certificates are byte-stable. */
export const fixtureKeySource: KeySource = async (key, fileBase) => {
  if (key.type !== 'rsa' || key.bits !== 2048) throw new Error(`fixture keys are RSA-2048, asked for ${JSON.stringify(key)}`);
  return readFileSync(join(FIXTURES, 'keys', `${fileBase}.key`), 'utf8');
};

/** Serials 01, 02, ... in minting order. */
export function counterSerials(): () => string {
  let next = 0;
  return () => (++next).toString(16).padStart(2, '0');
}

export const FIXED_NOW = new Date('2026-01-15T12:00:00Z');

/** Compares with the golden file; `UPDATE_GOLDEN=1` rewrites it instead (review the diff). */
export function expectGolden(actual: string, goldenPath: string): void {
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(goldenPath)) {
    if (process.env.UPDATE_GOLDEN !== '1') throw new Error(`missing golden file ${goldenPath}; run with UPDATE_GOLDEN=1 and review it`);
    mkdirSync(dirname(goldenPath), { recursive: true });
    writeFileSync(goldenPath, actual);
    return;
  }
  expect(actual).toBe(readFileSync(goldenPath, 'utf8'));
}
