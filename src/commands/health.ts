import type { CommandContext } from '../context.js';
import { FOLDER_FILES } from '../cluster-folder.js';
import { DEFAULT_WARN_DAYS } from '../defaults.js';
import { folderFromFlags, openCluster, parseTimeoutMs } from '../day2/open-cluster.js';
import { answered, assessHealth, checkMembers, describeLocalCertificate, quotaBackendBytesOf, renderHealthTable } from '../day2/health.js';
import { realEffects } from '../day2/effects.js';
import { membershipDrift } from '../day2/membership.js';
import { machinesOf } from '../day2/provider.js';
import { checkClientEndpoint } from '../day2/client-endpoint.js';
import { EXIT_FAILURE } from '../errors.js';
import { alarmList, firstAnswer, memberList } from '../etcd/client.js';
import { numberFlag, type ParsedOptions } from '../options.js';
import { certRequests } from '../pki/profiles.js';
import { writeResult } from '../result.js';

export function parseWarnDays(flags: ParsedOptions): number {
  return numberFlag(flags, 'warn-days', DEFAULT_WARN_DAYS, (days) => Number.isInteger(days) && days <= 3650, 'is not a whole number of days from 0 to 3650');
}

/** validate -> load the folder -> ask every member -> assess -> print. Exit 1 on any problem. */
export async function runHealth(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const warnDays = parseWarnDays(flags);
  const timeoutMs = parseTimeoutMs(flags);
  const cluster = openCluster(folderFromFlags(flags, context));
  const now = context.now();
  const client = { tls: cluster.adminTls, timeoutMs };
  const members = await checkMembers(cluster.plan, client, now);
  const certificates = [
    describeLocalCertificate(FOLDER_FILES.cert('admin'), cluster.adminTls.certPem, now),
    describeLocalCertificate(FOLDER_FILES.cert('ca'), cluster.adminTls.caPem, now),
    // Client certificates (--client, --kubernetes) expire like the admin one: kube-apiserver would lose etcd.
    ...certRequests(cluster.plan)
      .filter((request) => request.profile.scope === 'client')
      .flatMap((request) => {
        const certPem = cluster.pki.get(request.fileBase)?.certPem;
        return certPem ? [describeLocalCertificate(FOLDER_FILES.cert(request.fileBase), certPem, now)] : [];
      }),
  ];
  // A member added or removed behind cluster.json's back would be invisible in the table.
  const answering = members.find((member) => member.healthy && member.leader) ?? members.find((member) => member.healthy);
  const running = answering ? await memberList(answering.endpoint, client).catch(() => undefined) : undefined;
  const drift = running ? membershipDrift(cluster.plan.members, running) : [];
  // Alarms are the cluster's (any member lists them all); a member in NOSPACE still answers this.
  const listing = members.filter(answered).map((member) => member.endpoint);
  const alarms = listing.length > 0 ? await firstAnswer(listing, (endpoint) => alarmList(endpoint, client)).then((found) => found.value, () => undefined) : undefined;
  const database = { quotaBackendBytes: quotaBackendBytesOf(cluster.plan), alarms };
  const report = assessHealth(cluster.plan.clusterName, members, certificates, drift, warnDays, now, database);
  // Read-only here: the machines only say where a member that did not answer shows its boot.
  const machines = machinesOf(cluster, context, realEffects(cluster.folder), flags);
  // The stable client name (issue 29) resolves to exactly the voting members; a mismatch is a warning.
  const voters = running ? running.filter((member) => member.isLearner !== true && member.name).map((member) => member.name!) : cluster.plan.members.map((member) => member.name);
  const managedBy = cluster.digitalocean ? 'create-droplets keeps its records: the next roll, repair or remove-member sets them to the voting members' : undefined;
  const clientEndpoint = await checkClientEndpoint(cluster.plan, voters, timeoutMs, managedBy);
  if (clientEndpoint?.problem) context.stderr.write(`warning: client endpoint ${clientEndpoint.problem}\n`);
  writeResult(context, { ...report, clientEndpoint: clientEndpoint ?? null }, () =>
    renderHealthTable(report, (name) => machines.bootConsole(name)) + (clientEndpoint?.matches ? `Client endpoint ${clientEndpoint.name}: resolves to exactly the ${clientEndpoint.voters.length} voting member(s).\n` : ''),
  );
  const roll = cluster.folder.readRollState()?.current;
  if (roll) {
    const finished = roll.steps.filter((step) => step.done.length === 4).length;
    context.stderr.write(`note: a ${roll.operation} is in progress (started ${roll.startedAt}, ${finished} of ${roll.steps.length} member(s) replaced); run '${roll.operation}' to finish it\n`);
  }
  return report.healthy ? 0 : EXIT_FAILURE;
}
