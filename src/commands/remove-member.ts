import { X509Certificate } from 'node:crypto';
import type { CommandContext } from '../context.js';
import { FOLDER_OPTIONS, TIMEOUT_OPTION, loadClusterFolder, parseTimeoutMs, planFromRecord, withClusterFolderLock } from '../day2/cluster-folder.js';
import { hexMemberId } from '../day2/membership.js';
import { relativeTo } from '../day2/paths.js';
import { CliError, usageError } from '../errors.js';
import { firstAnswer, memberList, memberRemove } from '../etcd/client.js';
import type { OptionSpec, ParsedOptions } from '../options.js';
import { renderClusterJson, renderEtcdctlEnv } from '../output.js';
import { readClusterPki } from '../pki/mint.js';
import { PUBLIC_MODE, updateOutputFolder } from '../write.js';

export const REMOVE_MEMBER_OPTIONS: readonly OptionSpec[] = [
  { name: 'name', type: 'string', valueName: 'name', description: 'The member to remove (required)' },
  ...FOLDER_OPTIONS,
  TIMEOUT_OPTION,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

/** Holds the folder's lock from the first read to the last write. */
export function runRemoveMember(flags: ParsedOptions, context: CommandContext): Promise<number> {
  return withClusterFolderLock(flags, context, 'remove-member', () => removeMember(flags, context));
}

/** validate -> load -> plan -> member remove (asked of the other members) -> write cluster.json without it. */
async function removeMember(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const timeoutMs = parseTimeoutMs(flags);
  const folder = loadClusterFolder(flags, context);
  const name = flags.name;
  if (typeof name !== 'string') throw usageError('validate', 'name: is required (for example --name etcd3)');
  const leaving = folder.plan.members.find((member) => member.name === name);
  if (!leaving) {
    throw usageError('validate', `name: ${JSON.stringify(name)} is not a member (members: ${folder.plan.members.map((member) => member.name).join(', ')})`);
  }
  if (folder.plan.members.length === 1) throw usageError('validate', `name: ${JSON.stringify(name)} is the only member; a cluster cannot remove its last member`);
  const remaining = folder.record.members.filter((member) => member.name !== name);
  const plan = planFromRecord(folder.record, remaining, folder.out, context.cwd);
  const client = { tls: folder.adminTls, timeoutMs };

  // The leaving member may be the broken one: ask the others.
  const others = plan.members.map((member) => member.clientUrl);
  const { endpoint, value: running } = await firstAnswer(others, (candidate) => memberList(candidate, client)).catch((error: Error) => {
    throw new CliError('preflight', `no remaining member answered member list: ${error.message}`);
  });
  const target = running.find((member) => member.peerURLs?.includes(leaving.peerUrl));
  if (target) {
    await memberRemove(endpoint, target.ID, client).catch((error: Error) => {
      throw new CliError('api', `member remove ${name} (ID ${hexMemberId(target.ID)}) on ${endpoint} failed: ${error.message}`);
    });
  }

  const now = context.now();
  const pki = readClusterPki(plan, folder.existingPki);
  updateOutputFolder(folder.outDir, {
    files: [
      { path: 'cluster.json', content: renderClusterJson(plan, pki, now), mode: PUBLIC_MODE },
      { path: 'etcdctl.env', content: renderEtcdctlEnv(plan), mode: PUBLIC_MODE },
    ],
    // A removed member cannot rejoin with its old identity: add-member mints afresh.
    remove: [`pki/${name}.crt`, `pki/${name}.key`, `user-data/${name}.yaml`, `renew/${name}.sh`],
  });
  const certificate = folder.existingPki.get(name)?.certPem;
  const expiry = certificate ? new Date(new X509Certificate(certificate).validTo).toISOString().slice(0, 10) : 'its expiry';
  context.stdout.write(
    [
      target
        ? `Removed member ${name} (${leaving.ip}, ID ${hexMemberId(target.ID)}) from cluster ${plan.clusterName}: now ${plan.members.length} members.`
        : `Member ${name} (${leaving.ip}) was no longer in cluster ${plan.clusterName}; removed it from the folder: now ${plan.members.length} members.`,
      `Updated ${relativeTo(folder.outDir, context.cwd)}/cluster.json and etcdctl.env; deleted pki/${name}.crt, pki/${name}.key and user-data/${name}.yaml.`,
      '',
      `Next: on ${leaving.ip}, stop and disable etcd (systemctl disable --now etcd etcd-snapshot.timer) and delete /var/lib/etcd,`,
      `or destroy the machine. Its certificate stays valid (and trusted by the cluster) until ${expiry}: destroy the key with the machine.`,
      ...(plan.members.length % 2 === 0 ? [`Note: ${plan.members.length} members tolerate no more failures than ${plan.members.length - 1}.`] : []),
      '',
    ].join('\n'),
  );
  return 0;
}
