import { bucketFromFlags } from '../bucket-access.js';
import { listBackups, openStore, type BackupListing } from '../backup/store.js';
import type { CommandContext } from '../context.js';
import { folderFromFlags, parseTimeoutMs } from '../day2/open-cluster.js';
import type { ParsedOptions } from '../options.js';
import { writeResult } from '../result.js';

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** "skipped 2 objects whose names are not snapshots": what a listing passed over, or nothing. */
export function skippedNote(skipped: number): string | undefined {
  if (skipped === 0) return undefined;
  return `skipped ${skipped} object${skipped === 1 ? '' : 's'} whose names are not snapshots (<UTC time>-<member>-rev<revision>.db)`;
}

export function renderBackupsTable(listing: BackupListing, where: string): string {
  const { snapshots: objects, skipped } = listing;
  const note = skippedNote(skipped);
  const footer = note ? `${note}\n` : '';
  if (objects.length === 0) return `No snapshots in ${where}\n${footer}`;
  const rows = [
    ['TIME (UTC)', 'MEMBER', 'REVISION', 'SIZE', 'SHA256', 'OBJECT'],
    ...objects.map((o) => [o.time.replace('T', ' ').replace('Z', ''), o.member, String(o.revision), size(o.size), o.sha256 ?? '(none recorded)', o.key]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '));
  return `${objects.length} snapshot(s) in ${where}, newest first\n${lines.join('\n')}\n${footer}`;
}

/** backups: the bucket's snapshots of a cluster, newest first. */
export async function runBackups(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const timeoutMs = parseTimeoutMs(flags);
  const folder = folderFromFlags(flags, context);
  const { target, credentials } = bucketFromFlags(flags, context.env, folder);
  const store = openStore(target, credentials, timeoutMs);
  try {
    const listing = await listBackups(store);
    const where = `s3://${target.bucket}/${target.prefix} at ${target.endpoint}`;
    const url = `s3://${target.bucket}/${target.prefix}`;
    writeResult(context, { url, endpoint: target.endpoint, snapshots: listing.snapshots, skipped: listing.skipped }, () => renderBackupsTable(listing, where));
    return 0;
  } finally {
    store.client.destroy();
  }
}
