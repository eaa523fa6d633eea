import type { CommandContext } from '../context.js';
import { FOLDER_OPTIONS, TIMEOUT_OPTION, loadClusterFolder, parseTimeoutMs } from '../day2/cluster-folder.js';
import { assessHealth, checkMembers, describeLocalCertificate, renderHealthTable } from '../day2/health.js';
import { membershipDrift } from '../day2/membership.js';
import { EXIT_FAILURE, usageError } from '../errors.js';
import { memberList } from '../etcd/client.js';
import type { OptionSpec, ParsedOptions } from '../options.js';

export const HEALTH_OPTIONS: readonly OptionSpec[] = [
  ...FOLDER_OPTIONS,
  { name: 'warn-days', type: 'string', valueName: 'days', description: 'Fail when a member, admin or CA certificate expires within this many days (default 30)' },
  { name: 'json', type: 'boolean', description: 'Print the report as JSON instead of a table' },
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

export function parseWarnDays(flags: ParsedOptions): number {
  const raw = flags['warn-days'];
  if (raw === undefined) return 30;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) > 3650) {
    throw usageError('validate', `warn-days: ${JSON.stringify(raw)} is not a whole number of days from 0 to 3650`);
  }
  return Number(raw);
}

/** validate -> load the folder -> ask every member -> assess -> print. Exit 1 on any problem. */
export async function runHealth(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const warnDays = parseWarnDays(flags);
  const timeoutMs = parseTimeoutMs(flags);
  const folder = loadClusterFolder(flags, context);
  const now = context.now();
  const members = await checkMembers(folder.plan, { tls: folder.adminTls, timeoutMs }, now);
  const certificates = [
    describeLocalCertificate('pki/admin.crt', folder.adminTls.certPem, now),
    describeLocalCertificate('pki/ca.crt', folder.adminTls.caPem, now),
  ];
  // A member added or removed behind cluster.json's back would be invisible in the table.
  const answering = members.find((member) => member.healthy && member.leader) ?? members.find((member) => member.healthy);
  const running = answering ? await memberList(answering.endpoint, { tls: folder.adminTls, timeoutMs }).catch(() => undefined) : undefined;
  const drift = running ? membershipDrift(folder.plan.members, running) : [];
  const report = assessHealth(folder.plan.clusterName, members, certificates, drift, warnDays, now);
  context.stdout.write(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : renderHealthTable(report));
  return report.healthy ? 0 : EXIT_FAILURE;
}
