import { ClusterFolder, FOLDER_FILES } from '../cluster-folder.js';
import { confirm } from '../confirm.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_CLUSTER_NAME, DEFAULT_OUT, DEFAULT_VPC_DELETE_WAIT_SECONDS } from '../defaults.js';
import { CliError, EXIT_FAILURE, usageError } from '../errors.js';
import { listFlag, secondsFlagMs, stringFlag, type ParsedOptions } from '../options.js';
import { writeResult } from '../result.js';
import { connectDigitalOcean } from '../digitalocean/connect.js';
import { DigitalOceanApiError } from '../digitalocean/errors.js';
import { clusterTag, destroyDropletCluster, findDropletCluster } from '../digitalocean/cluster.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runDestroyDroplets(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const clusterName = stringFlag(flags, 'cluster-name') ?? DEFAULT_CLUSTER_NAME;
  if (!/^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$/.test(clusterName)) throw usageError('validate', `cluster-name: ${JSON.stringify(clusterName)} is not a valid cluster name`);
  const folder = new ClusterFolder(stringFlag(flags, 'out') ?? DEFAULT_OUT, clusterName, context.cwd);
  const dryRun = flags['dry-run'] === true;
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const vpcDeleteTimeoutMs = secondsFlagMs(flags, 'wait-timeout', DEFAULT_VPC_DELETE_WAIT_SECONDS, 3600, 'is not a number of seconds from 1 to 3600');
  const domains = listFlag(flags, 'domain').map((d) => d.toLowerCase());
  const state = folder.readDigitalOceanState();
  const knownRecordNames = (state?.members ?? []).map((m) => m.dropletName);
  if (domains.length === 0) {
    if (state?.domain) domains.push(state.domain);
    else progress(`note: no --domain and no ${FOLDER_FILES.digitaloceanJson} in ${folder.dir}: DNS records are not looked for; pass --domain to remove them`);
  }
  const client = connectDigitalOcean(context.env, progress, dryRun);
  const spec = { clusterName, domains, knownRecordNames, vpcDeleteTimeoutMs };
  const found = await findDropletCluster(client, spec).catch((error: unknown) => {
    throw error instanceof DigitalOceanApiError ? new CliError('api', error.message) : error;
  });
  const summary = {
    clusterName,
    tag: clusterTag(clusterName),
    droplets: found.droplets.map((d) => ({ id: d.id, name: d.name })),
    firewall: found.firewall ? { id: found.firewall.id, name: found.firewall.name } : null,
    dnsRecords: found.records.map(({ domain, record }) => ({ id: record.id, name: `${record.name}.${domain}`, data: record.data })),
    vpc: found.vpc ? { id: found.vpc.id, name: found.vpc.name } : null,
  };
  const nothing = !found.firewall && !found.vpc && found.droplets.length === 0 && found.records.length === 0;
  const listing = [
    `Cluster ${clusterName} (tag ${summary.tag}):`,
    `  droplets:    ${summary.droplets.map((d) => `${d.name} (${d.id})`).join(', ') || 'none'}`,
    `  DNS records: ${summary.dnsRecords.map((r) => `${r.name} -> ${r.data}`).join(', ') || 'none'}`,
    `  firewall:    ${summary.firewall ? `${summary.firewall.name} (${summary.firewall.id})` : 'none'}`,
    `  VPC:         ${summary.vpc ? `${summary.vpc.name} (${summary.vpc.id}, created by etcd-cloudinit)` : 'none created by etcd-cloudinit'}`,
  ].join('\n');
  if (nothing) {
    writeResult(context, { dryRun, deleted: false, ...summary }, () => `Nothing to destroy for cluster ${clusterName}: no droplet tagged ${summary.tag}, no firewall, DNS record or VPC of it.\n`);
    return 0;
  }
  progress(listing);
  if (!dryRun && flags.yes !== true) {
    const answer = await confirm(context, `Delete all of this? This cannot be undone. [y/N] `);
    if (answer === undefined) throw usageError('validate', 'yes: refusing to delete without confirmation; no terminal to ask on, so pass --yes');
    if (!answer) {
      context.stderr.write('Nothing deleted.\n');
      return EXIT_FAILURE;
    }
  }
  try {
    await destroyDropletCluster(client, spec, found, { progress, sleep, now: () => context.now().getTime() });
  } catch (error) {
    if (error instanceof DigitalOceanApiError) {
      throw new CliError('api', `${error.message}\nRe-run the same destroy-droplets command to finish: it finds what is left by tag and name.`);
    }
    throw error;
  }
  writeResult(context, { dryRun, deleted: !dryRun, ...summary }, () =>
    dryRun ? `Dry run: nothing was deleted.\n` : `Destroyed cluster ${clusterName}. The local files in ${folder.shown} are kept (the CA key is there).\n`,
  );
  return 0;
}
