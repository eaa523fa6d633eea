import { bucketFromFlags } from '../bucket-access.js';
import { listBackups, s3Client } from '../backup/store.js';
import type { BackupObject } from '../backup/target.js';
import type { CommandContext } from '../context.js';
import { folderFromFlags } from '../day2/open-cluster.js';
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

export function renderBackupsTable(objects: readonly BackupObject[], where: string): string {
  if (objects.length === 0) return `No snapshots in ${where}\n`;
  const rows = [
    ['TIME (UTC)', 'MEMBER', 'REVISION', 'SIZE', 'SHA256', 'OBJECT'],
    ...objects.map((o) => [o.time.replace('T', ' ').replace('Z', ''), o.member, String(o.revision), size(o.size), o.sha256 ?? '(none recorded)', o.key]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '));
  return `${objects.length} snapshot(s) in ${where}, newest first\n${lines.join('\n')}\n`;
}

/** backups: the bucket's snapshots of a cluster, newest first. */
export async function runBackups(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const folder = folderFromFlags(flags, context);
  const { target, credentials } = bucketFromFlags(flags, context.env, folder);
  const objects = await listBackups(s3Client(target, credentials), target);
  const where = `s3://${target.bucket}/${target.prefix} at ${target.endpoint}`;
  const url = `s3://${target.bucket}/${target.prefix}`;
  writeResult(context, { url, endpoint: target.endpoint, snapshots: objects }, () => renderBackupsTable(objects, where));
  return 0;
}
