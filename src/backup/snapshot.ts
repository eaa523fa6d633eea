import { createHash, type Hash } from 'node:crypto';

/**
 * A snapshot as etcd streams it: the bbolt database file, then the 32-byte SHA-256 of that file.
 * etcd's restore checks the same way (saveDB in clientv3/snapshot/v3_snapshot.go on 3.4,
 * etcdutl/snapshot/v3_snapshot.go later): a file whose size modulo 512 is 32 carries the hash
 * (`hasHash := (off % 512) == sha256.Size`: bbolt files are whole pages), and the SHA-256 of
 * all bytes but the last 32 must equal those 32 ("expected sha256 ..., got ..."). `etcdctl
 * snapshot save` writes the stream as it came, hash included, so the file this checks is the
 * file the nodes' timer saves, and `etcdctl snapshot restore` checks it again on the node.
 */
export const SNAPSHOT_HASH_BYTES = 32;
const PAGE_MULTIPLE = 512;

/** Fed the stream in order, it hashes all but the last 32 bytes it has seen. */
export class SnapshotChecker {
  readonly #hash: Hash = createHash('sha256');
  /** The whole stream's SHA-256: what the bucket's x-amz-meta-sha256 records (as the nodes' sha256sum of the file). */
  readonly #whole: Hash = createHash('sha256');
  #tail: Buffer = Buffer.alloc(0);
  #size = 0;

  update(chunk: Buffer): void {
    this.#whole.update(chunk);
    this.#size += chunk.length;
    const joined = Buffer.concat([this.#tail, chunk]);
    const keep = Math.min(SNAPSHOT_HASH_BYTES, joined.length);
    this.#hash.update(joined.subarray(0, joined.length - keep));
    this.#tail = Buffer.from(joined.subarray(joined.length - keep));
  }

  /** The checked stream's size and SHA-256, or the reason it is no whole snapshot. */
  finish(): { readonly ok: true; readonly size: number; readonly sha256: string } | { readonly ok: false; readonly problem: string } {
    const size = this.#size;
    if (size % PAGE_MULTIPLE !== SNAPSHOT_HASH_BYTES) {
      return { ok: false, problem: `${size} bytes is no whole snapshot (a bbolt file of 512-byte multiples and the 32-byte SHA-256 etcd appends): the stream was cut or altered` };
    }
    const expected = this.#tail.toString('hex');
    const actual = this.#hash.digest('hex');
    if (expected !== actual) return { ok: false, problem: `the database's SHA-256 is ${actual}, but etcd sent ${expected} after it: the stream was damaged on the way` };
    return { ok: true, size, sha256: this.#whole.digest('hex') };
  }
}

/** Checks a whole snapshot held in memory (tests, small files). */
export function checkSnapshotBytes(bytes: Buffer): ReturnType<SnapshotChecker['finish']> {
  const checker = new SnapshotChecker();
  checker.update(bytes);
  return checker.finish();
}

/** `20261203T081500Z`: the UTC time as the nodes' timer stamps its files (date -u +%Y%m%dT%H%M%SZ). */
export function snapshotStamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** The object's file name, as etcd-backup-upload.sh names it: `<stamp>-<member>-rev<revision>.db`. */
export function snapshotFileName(stamp: string, member: string, revision: number | string): string {
  return `${stamp}-${member}-rev${revision}.db`;
}
