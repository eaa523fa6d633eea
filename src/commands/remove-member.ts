import { X509Certificate } from 'node:crypto';
import { FOLDER_FILES } from '../cluster-folder.js';
import { confirm } from '../confirm.js';
import type { CommandContext } from '../context.js';
import { DRY_RUN_MEMBER_ID, dryRunEffects, realEffects, type Day2Effects } from '../day2/effects.js';
import { machinesOf } from '../day2/provider.js';
import { folderFromFlags, openCluster, refuseDuringReplacement, parseTimeoutMs, planOf, type OpenCluster } from '../day2/open-cluster.js';
import { CliError, EXIT_FAILURE, usageError } from '../errors.js';
import { firstAnswer, hexMemberId, memberList } from '../etcd/client.js';
import type { ParsedOptions } from '../options.js';
import { recordFiles } from '../output.js';
import { withMembers } from '../record-codec.js';
import { readClusterPki } from '../pki/mint.js';
import { writeResult } from '../result.js';

/** Holds the folder's lock from the first read to the last write. */
export function runRemoveMember(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const folder = folderFromFlags(flags, context);
  const now = context.now();
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const effects = flags['dry-run'] === true ? dryRunEffects(folder, progress) : realEffects(folder);
  return folder.withLock('remove-member', now, () => {
    refuseDuringReplacement(folder, 'remove-member');
    return removeMember(flags, context, openCluster(folder), effects, now);
  });
}

/**
 * validate -> plan -> member remove (asked of the other members) -> (create-droplets clusters) delete
 * its A record and droplet -> write cluster.json without it. Each step finds what an interrupted
 * run already did, so a re-run finishes the job.
 */
async function removeMember(flags: ParsedOptions, context: CommandContext, cluster: OpenCluster, effects: Day2Effects, now: Date): Promise<number> {
  const timeoutMs = parseTimeoutMs(flags);
  const { folder, record } = cluster;
  const name = flags.member;
  if (typeof name !== 'string') throw usageError('validate', 'member: is required (for example --member etcd3)');
  const leaving = cluster.plan.members.find((member) => member.name === name);
  // A run that deleted the member but not yet its machine (a droplet): only the machine's part is left.
  const machines = machinesOf(cluster, context, effects, flags);
  const dropletLeft = machines.holds(name);
  if (!leaving && !dropletLeft) {
    throw usageError('validate', `member: ${JSON.stringify(name)} is not a member (members: ${cluster.plan.members.map((member) => member.name).join(', ')})`);
  }
  if (leaving && cluster.plan.members.length === 1) throw usageError('validate', `member: ${JSON.stringify(name)} is the only member; a cluster cannot remove its last member`);
  const remaining = record.members.filter((member) => member.name !== name);
  const plan = planOf(cluster, withMembers(cluster.input, remaining));
  const client = { tls: cluster.adminTls, timeoutMs };
  if (!effects.dryRun && flags.yes !== true) {
    const what = `member ${name}${leaving ? ` (${leaving.host})` : ''} from cluster ${plan.clusterName}${dropletLeft ? ' and delete its droplet and A record' : ''}`;
    const answer = await confirm(context, `Remove ${what}? [y/N] `);
    if (answer === undefined) throw usageError('validate', `yes: refusing to remove ${what} without confirmation; stdin is not a terminal to ask on, so pass --yes`);
    if (!answer) {
      context.stderr.write('Nothing removed.\n');
      return EXIT_FAILURE;
    }
  }

  let removedId: string | undefined;
  if (leaving) {
    // The leaving member may be the broken one: ask the others.
    const others = plan.members.map((member) => member.clientUrl);
    const answer = await firstAnswer(others, (candidate) => memberList(candidate, client)).catch((error: Error) => {
      if (!effects.dryRun) throw new CliError('preflight', `no remaining member answered member list: ${error.message}`);
      // A dry run shows the plan all the same, and says what it could not see.
      context.stderr.write(`dry run: could not check whether ${name} is still in the running cluster, or its member ID: no remaining member answered member list (${error.message}); the plan assumes it is\n`);
      return undefined;
    });
    const target = answer ? answer.value.find((member) => member.peerURLs?.includes(leaving.peerUrl)) : { ID: DRY_RUN_MEMBER_ID };
    const endpoint = answer?.endpoint ?? others[0]!;
    if (target) {
      // Clients that resolve the stable name stop being sent to it before it goes.
      await machines.listClients(plan.members.map((member) => member.name));
      await effects.memberRemove(endpoint, target.ID, client).catch((error: Error) => {
        throw new CliError('api', `member remove ${name} (ID ${hexMemberId(target.ID)}) on ${endpoint} failed: ${error.message}`);
      });
      removedId = target.ID;
    }
  }
  const machine = dropletLeft ? await machines.retire(name) : undefined;

  if (leaving) {
    const pki = readClusterPki(plan, cluster.pki);
    effects.updateFolder({
      files: recordFiles(plan, pki, now),
      // A removed member cannot rejoin with its old identity: add-member mints afresh.
      remove: [FOLDER_FILES.cert(name), FOLDER_FILES.key(name), FOLDER_FILES.userData(name), FOLDER_FILES.renewScript(name)],
    });
  }
  const host = leaving?.host ?? name;
  const document = {
    dryRun: effects.dryRun,
    clusterName: plan.clusterName,
    removed: { name, host, id: removedId === undefined ? null : hexMemberId(removedId) },
    members: plan.members.map((member) => member.name),
    droplet: machine ?? null,
  };
  if (effects.dryRun) {
    writeResult(context, document, () => `Dry run: would remove member ${name} from cluster ${plan.clusterName}; nothing was changed or written.\n`);
    return 0;
  }
  const certificate = cluster.pki.get(name)?.certPem;
  const expiry = certificate ? new Date(new X509Certificate(certificate).validTo).toISOString().slice(0, 10) : 'its expiry';
  writeResult(context, document, () =>
    [
      removedId
        ? `Removed member ${name} (${host}, ID ${hexMemberId(removedId)}) from cluster ${plan.clusterName}: now ${plan.members.length} members.`
        : `Member ${name} (${host}) was no longer in cluster ${plan.clusterName}; removed it from the folder: now ${plan.members.length} members.`,
      ...(leaving
        ? [
            `Updated ${folder.shownFile(FOLDER_FILES.clusterJson)} and ${FOLDER_FILES.etcdctlEnv}; deleted ${FOLDER_FILES.cert(name)}, ${FOLDER_FILES.key(name)} and ${FOLDER_FILES.userData(name)}.`,
          ]
        : []),
      '',
      machine
        ? `DigitalOcean: ${machine}; its key went with the droplet.`
        : `Next: on ${host}, stop and disable etcd (systemctl disable --now etcd etcd-snapshot.timer) and delete /var/lib/etcd,\nor destroy the machine. Its certificate stays valid (and trusted by the cluster) until ${expiry}: destroy the key with the machine.`,
      ...(plan.members.length % 2 === 0 ? [`Note: ${plan.members.length} members tolerate no more failures than ${plan.members.length - 1}.`] : []),
      '',
    ].join('\n'),
  );
  return 0;
}
