import { ClusterFolder, FOLDER_FILES, refusePendingRoll } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_CLUSTER_NAME, DEFAULT_OUT } from '../defaults.js';
import { usageError } from '../errors.js';
import { existingRecord, folderOf, generateCluster, type GeneratedCluster } from '../generate.js';
import { flagsToRawInput, loadConfigFile, resolveClusterInput, type ClusterInput, type RecordedSettings } from '../input.js';
import type { ParsedOptions } from '../options.js';
import type { RestorePlan } from '../plan.js';
import { recordedSettings } from '../record-codec.js';
import { installSource } from '../render.js';
import { jsonOutput, writeResult } from '../result.js';
import { shellWord } from '../templates.js';

/** validate --print <member> (gen-userdata, create-droplets, restore): a member of the input, and stdout free for it. */
export function printMemberOf(flags: ParsedOptions, input: ClusterInput, context: CommandContext): string | undefined {
  const printMember = typeof flags.print === 'string' ? flags.print : undefined;
  if (printMember === undefined) return undefined;
  if (!input.members.some((member) => member.name === printMember)) {
    throw usageError('validate', `print: ${JSON.stringify(printMember)} is not a member (members: ${input.members.map((member) => member.name).join(', ')})`);
  }
  if (jsonOutput(context)) {
    throw usageError('validate', `print: cannot be combined with --json (stdout carries the JSON document); the user-data is in the file the document names`);
  }
  if (flags['dry-run'] === true) throw usageError('validate', 'print: a dry run writes no user-data to print; drop --dry-run or --print');
  return printMember;
}

/**
 * validate: flags and the config file into a checked input; warnings go to stderr. A re-run keeps
 * the settings the folder's cluster.json recorded unless the config or a flag sets them, and says
 * which ones it changes.
 */
export function validateClusterFlags(flags: ParsedOptions, context: CommandContext): ClusterInput {
  const fileInput = typeof flags.config === 'string' ? loadConfigFile(flags.config, context.cwd) : {};
  const flagInput = flagsToRawInput(flags);
  const { out, 'cluster-name': clusterName } = { ...fileInput, ...flagInput };
  const folder = new ClusterFolder(typeof out === 'string' ? out : 'out', typeof clusterName === 'string' ? clusterName : 'etcd', context.cwd);
  const record = existingRecord(folder);
  const recorded = record ? recordedSettings(record) : {};
  const { input, warnings } = resolveClusterInput(fileInput, flagInput, recorded);
  for (const warning of warnings) context.stderr.write(`warning: ${warning}\n`);
  for (const change of settingChanges(recorded, input)) context.stderr.write(`note: ${change}, as ${folder.shownFile(FOLDER_FILES.clusterJson)} recorded\n`);
  return input;
}

/** The recorded settings this input changes, for people: `key-type: rsa replaces ecdsa-p256`. */
function settingChanges(recorded: RecordedSettings, input: ClusterInput): string[] {
  const onOff = (on: boolean) => (on ? 'on' : 'off');
  return [
    recorded.keyType !== undefined && recorded.keyType !== input.keyType ? `key-type: ${input.keyType} replaces ${recorded.keyType}` : undefined,
    recorded.keySize !== undefined && input.keyType === 'rsa' && recorded.keyType === 'rsa' && recorded.keySize !== input.keySize ? `key-size: ${input.keySize} replaces ${recorded.keySize}` : undefined,
    recorded.install !== undefined && recorded.install !== input.install ? `install: ${input.install} replaces ${recorded.install}` : undefined,
    recorded.metrics !== undefined && recorded.metrics !== input.metrics ? `metrics: ${onOff(input.metrics)} replaces ${onOff(recorded.metrics)}` : undefined,
    recorded.quotaBackendBytes !== undefined && recorded.quotaBackendBytes !== input.quotaBackendBytes ? `quota-backend-bytes: ${input.quotaBackendBytes} replaces ${recorded.quotaBackendBytes}` : undefined,
    recorded.etcdOptions !== undefined && JSON.stringify(recorded.etcdOptions) !== JSON.stringify(input.etcdOptions) ? `etcd-options: ${optionsText(input.etcdOptions)} replace ${optionsText(recorded.etcdOptions)}` : undefined,
    recorded.defrag !== undefined && recorded.defrag !== input.defrag ? `defrag: ${onOff(input.defrag)} replaces ${onOff(recorded.defrag)}` : undefined,
  ].filter((change) => change !== undefined);
}

function optionsText(options: Readonly<Record<string, string>>): string {
  const entries = Object.entries(options);
  return entries.length === 0 ? '(none)' : entries.map(([key, value]) => `${key}=${value}`).join(' ');
}

export function renderSummary(generated: GeneratedCluster, folder: ClusterFolder): string {
  const { plan, pki, userData } = generated;
  const state = (reused: boolean) => (reused ? 'kept' : 'minted');
  const lines = [
    `Cluster ${plan.clusterName}: ${plan.members.length} member(s), etcd ${plan.etcdVersion} ${installSource(plan)}`,
    `  ca      ${state(pki.ca.reused).padEnd(7)}${FOLDER_FILES.cert('ca')} (expires ${pki.ca.notAfter.slice(0, 10)}; ${FOLDER_FILES.key('ca')} stays here)`,
    ...plan.members.map((member) => {
      const cert = pki.members.get(member.name)!;
      const bytes = Buffer.byteLength(userData.get(member.name)!);
      return `  ${member.name.padEnd(8)}${state(cert.reused).padEnd(7)}${FOLDER_FILES.cert(member.name)}  ${FOLDER_FILES.userData(member.name)} (${(bytes / 1024).toFixed(1)} KiB)  ${member.clientUrl}`;
    }),
    `  admin   ${state(pki.admin.reused).padEnd(7)}${FOLDER_FILES.cert('admin')} (expires ${pki.admin.notAfter.slice(0, 10)})`,
    ...pki.all
      .filter((cert) => cert.client !== undefined)
      .map((cert) => `  client  ${state(cert.reused).padEnd(7)}${FOLDER_FILES.cert(cert.fileBase)} (CN=${cert.client}, expires ${cert.notAfter.slice(0, 10)})`),
    ...(plan.kubernetes ? [`  kubernetes     ${folder.shownFile(FOLDER_FILES.kubernetesDir)}/: kube-apiserver's pair, ca.crt, kubeadm and k3s config (see its README.txt)`] : []),
    `Wrote ${folder.shown}/`,
    '',
    'Next: give each machine its user-data (the droplet console\'s "User data" box, or your cloud\'s equivalent),',
    plan.install.mode === 'baked'
      ? `boot them from an image baked with etcd ${plan.etcdVersion} (packer/, see docs/packer.md), then from this workstation:`
      : 'boot them, then from this workstation (the cluster is healthy a few minutes after boot):',
    `  ${healthCommand(folder)}`,
    '',
  ];
  return lines.join('\n');
}

/** The health command that finds this folder from the same directory: --cluster-name and --out as given, left out when they are health's defaults. */
export function healthCommand(folder: ClusterFolder): string {
  const flags = [
    ...(folder.clusterName === DEFAULT_CLUSTER_NAME ? [] : ['--cluster-name', folder.clusterName]),
    ...(folder.out === DEFAULT_OUT ? [] : ['--out', folder.out]),
  ];
  return ['etcd-cloudinit health', ...flags.map(shellWord)].join(' ');
}

/** The JSON result of gen-userdata and restore (schema/output/gen-userdata.schema.json): what was written where. */
export function clusterDocument(generated: GeneratedCluster, folder: ClusterFolder): object {
  const { plan, pki, userData } = generated;
  const certificate = (cert: { fileBase: string; reused: boolean; notAfter: string }) => ({
    file: folder.shownFile(FOLDER_FILES.cert(cert.fileBase)),
    state: cert.reused ? 'kept' : 'minted',
    notAfter: cert.notAfter,
  });
  return {
    clusterName: plan.clusterName,
    etcdVersion: plan.etcdVersion,
    install: plan.install.mode,
    folder: folder.shown,
    endpoints: plan.endpoints.split(','),
    etcdctlEnv: folder.shownFile(FOLDER_FILES.etcdctlEnv),
    ca: certificate(pki.ca),
    admin: certificate(pki.admin),
    members: plan.members.map((member) => ({
      name: member.name,
      host: member.host,
      clientUrl: member.clientUrl,
      peerUrl: member.peerUrl,
      certificate: certificate(pki.members.get(member.name)!),
      userData: { file: folder.shownFile(FOLDER_FILES.userData(member.name)), bytes: Buffer.byteLength(userData.get(member.name)!) },
    })),
    ...(plan.restore
      ? { restoredFrom: { source: plan.restore.source, sha256: plan.restore.sha256, revision: plan.restore.revision, urlExpires: plan.restore.urlExpires } }
      : {}),
  };
}

/** `restore`: the members' user-data restores this snapshot at first boot; it validated the flags already (`input`). */
export async function runGenUserdata(flags: ParsedOptions, context: CommandContext, restore?: RestorePlan, input = validateClusterFlags(flags, context)): Promise<number> {
  const printMember = printMemberOf(flags, input, context);
  const folder = folderOf(input, context.cwd);
  const now = context.now();
  const generated = await folder.withLock('gen-userdata', now, () => {
    if (flags.force === true && !restore) refusePendingRoll(folder, 'gen-userdata --force');
    return generateCluster(input, folder, context, now, flags.force === true, restore);
  });
  if (printMember !== undefined) {
    context.stderr.write(renderSummary(generated, folder));
    context.stdout.write(generated.userData.get(printMember)!);
  } else {
    writeResult(context, clusterDocument(generated, folder), () => renderSummary(generated, folder));
  }
  return 0;
}
