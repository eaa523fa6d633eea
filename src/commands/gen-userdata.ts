import { FOLDER_FILES, type ClusterFolder } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { usageError } from '../errors.js';
import { folderOf, generateCluster, type GeneratedCluster } from '../generate.js';
import { flagsToRawInput, loadConfigFile, resolveClusterInput, type ClusterInput } from '../input.js';
import type { OptionSpec, ParsedOptions } from '../options.js';
import { installSource } from '../render.js';
import { shellWord } from '../templates.js';
import { DEFAULT_ETCD_VERSION, DEFAULT_RELEASE_URL } from '../versions.js';

/** The cluster options shared by every command that generates a cluster's files. */
export const CLUSTER_OPTIONS: readonly OptionSpec[] = [
  { name: 'ips', type: 'string', valueName: 'a,b,c', description: 'Member IPv4 addresses, comma-separated (required unless --config gives members)' },
  { name: 'names', type: 'string', valueName: 'n1,n2,n3', description: 'Member names, one per address (default etcd1..etcdN)' },
  { name: 'hostnames', type: 'string', valueName: 'h1,h2,h3', description: 'DNS-member mode: one DNS name per member instead of --ips; you create the A records (see docs/digitalocean.md)' },
  { name: 'domain', type: 'string', valueName: 'zone', description: 'DNS-member mode with names <cluster-name>-<member>.<zone> (members from --names, default etcd1..etcd3)' },
  { name: 'cluster-name', type: 'string', valueName: 'name', description: 'Cluster name: output folder and initial-cluster-token seed (default etcd)' },
  { name: 'config', type: 'string', valueName: 'file', description: 'Read options from a YAML file (keys as the flags, see schema/cluster.schema.json); flags override it' },
  { name: 'out', type: 'string', valueName: 'dir', description: 'Output folder; files go to <dir>/<cluster-name>/ (default out)' },
  { name: 'etcd-version', type: 'string', valueName: 'vX.Y.Z', description: `etcd release to install (or, with --install baked, the one the image must have), v3.4.x to v3.7.x (default ${DEFAULT_ETCD_VERSION})` },
  { name: 'release-url', type: 'string', valueName: 'url', description: `Base URL of etcd releases, e.g. a mirror (default ${DEFAULT_RELEASE_URL})` },
  {
    name: 'install',
    type: 'string',
    valueName: 'mode',
    description: 'How nodes get etcd: download (fetch and verify the release at first boot; default) or baked (the image has it, see docs/packer.md; only its version is checked at boot)',
  },
  { name: 'etcd-sha256', type: 'string', valueName: 'hex', description: "Pin the tarball's SHA-256 instead of trusting the release's SHA256SUMS" },
  { name: 'key-size', type: 'string', valueName: 'bits', description: 'RSA key size: 2048, 3072 or 4096 (default 4096)' },
  { name: 'cert-days', type: 'string', valueName: 'days', description: 'Member and admin certificate validity in days (default 825; the CA gets 10 years)' },
  { name: 'heartbeat-interval', type: 'string', valueName: 'ms', description: "Raft heartbeat interval in ms (default etcd's 100); raise with --election-timeout on slow or distant networks" },
  { name: 'election-timeout', type: 'string', valueName: 'ms', description: "Raft election timeout in ms (default etcd's 1000; at least 5x the heartbeat interval)" },
  { name: 'allow-even', type: 'boolean', description: 'Allow an even member count (it adds no fault tolerance)' },
  { name: 'no-snapshots', type: 'boolean', description: 'Do not install the snapshot timer (etcdctl snapshot save into /var/backups/etcd) on the nodes' },
  { name: 'snapshot-schedule', type: 'string', valueName: 'calendar', description: 'When nodes save a snapshot: a systemd OnCalendar expression (default hourly)' },
  { name: 'snapshot-retain', type: 'string', valueName: 'count', description: 'Snapshots kept on each node (default 24)' },
  { name: 'force', type: 'boolean', description: 'Re-mint member and admin certificates and keys even if the existing ones still match, and rewrite a folder that add-member/remove-member changed (the CA is always kept)' },
];

export const GEN_USERDATA_OPTIONS: readonly OptionSpec[] = [
  ...CLUSTER_OPTIONS,
  { name: 'print', type: 'string', valueName: 'member', description: "Also write that member's user-data to stdout (the summary then goes to stderr)" },
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

/** validate: flags and the config file into a checked input; warnings go to stderr. */
export function validateClusterFlags(flags: ParsedOptions, context: CommandContext): ClusterInput {
  const fileInput = typeof flags.config === 'string' ? loadConfigFile(flags.config, context.cwd) : {};
  const { input, warnings } = resolveClusterInput(fileInput, flagsToRawInput(flags));
  for (const warning of warnings) context.stderr.write(`warning: ${warning}\n`);
  return input;
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
    `Wrote ${folder.shown}/`,
    '',
    'Next: give each machine its user-data (the droplet console\'s "User data" box, or your cloud\'s equivalent),',
    plan.install.mode === 'baked'
      ? `boot them from an image baked with etcd ${plan.etcdVersion} (packer/, see docs/packer.md), then from this workstation:`
      : 'boot them, then from this workstation:',
    `  . ${shellWord(folder.shownFile(FOLDER_FILES.etcdctlEnv))} && etcdctl endpoint health --cluster`,
    '',
  ];
  return lines.join('\n');
}

export async function runGenUserdata(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const input = validateClusterFlags(flags, context);
  const printMember = typeof flags.print === 'string' ? flags.print : undefined;
  if (printMember !== undefined && !input.members.some((member) => member.name === printMember)) {
    throw usageError('validate', `print: ${JSON.stringify(printMember)} is not a member (members: ${input.members.map((member) => member.name).join(', ')})`);
  }
  const folder = folderOf(input, context.cwd);
  const now = context.now();
  const generated = await folder.withLock('gen-userdata', now, () => generateCluster(input, folder, context, now, flags.force === true));
  if (printMember !== undefined) {
    context.stderr.write(renderSummary(generated, folder));
    context.stdout.write(generated.userData.get(printMember)!);
  } else {
    context.stdout.write(renderSummary(generated, folder));
  }
  return 0;
}
