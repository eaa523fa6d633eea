import { FOLDER_FILES } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { folderFromFlags } from '../day2/open-cluster.js';
import { writeResult } from '../result.js';
import type { ParsedOptions } from '../options.js';
import { connectDigitalOcean } from '../digitalocean/connect.js';
import { DigitalOceanApiError } from '../digitalocean/errors.js';
import { ensureFirewall } from '../digitalocean/cluster.js';
import { accessFlags } from './create-droplets.js';

/**
 * `firewall`: who may reach a create-droplets cluster from outside its VPC, changed in place.
 * validate -> read digitalocean.json -> (lock) ensure the firewall -> record. The firewall is the
 * one create-droplets made, ensured by the same code: with no flag it is put back to the record.
 */
export async function runFirewall(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const { sshFrom, trustedSources, warnings } = accessFlags(flags);
  const folder = folderFromFlags(flags, context);
  const state = folder.readDigitalOceanState();
  if (!state) {
    throw new CliError('preflight', `${folder.shownFile(FOLDER_FILES.digitaloceanJson)} does not exist: the firewall is create-droplets' own; clusters on other clouds keep their own firewall`);
  }
  const record = folder.readClusterRecord();
  for (const warning of warnings) context.stderr.write(`warning: ${warning}\n`);
  const dryRun = flags['dry-run'] === true;
  const progress = (line: string) => void context.stderr.write(`${line}\n`);
  const client = connectDigitalOcean(context.env, progress, dryRun);
  const now = context.now();
  const apply = async () => {
    try {
      return await ensureFirewall(
        client,
        { clusterName: state.clusterName, metrics: record.metrics !== false, sshFrom, trustedSources, recordedAccess: state.access, dropHandAddedRules: flags['drop-hand-added-rules'] === true },
        state.vpc.ipRange,
        progress,
      );
    } catch (error) {
      throw error instanceof DigitalOceanApiError ? new CliError('api', `${error.message}\nNothing was changed.`) : error;
    }
  };
  const result = dryRun
    ? await apply()
    : await folder.withLock('firewall', now, async () => {
        const firewall = await apply();
        folder.writeDigitalOceanState({ ...state, firewall: { id: firewall.id, name: firewall.name }, access: firewall.access, updatedAt: now.toISOString() });
        return firewall;
      });
  const { access } = result;
  writeResult(context, { dryRun, clusterName: state.clusterName, firewall: result }, () =>
    [
      `${dryRun ? 'Dry run: firewall' : 'Firewall'} ${result.name} (${result.id}) ${dryRun && result.outcome !== 'unchanged' ? `would be ${result.outcome}` : result.outcome}:`,
      `  clients (port 2379) from outside the VPC: ${access.trustedSources.join(', ') || 'none (only the VPC and the cluster tag)'}`,
      `  SSH (port 22): ${access.sshFrom.join(', ') || 'nowhere'}`,
      dryRun ? 'Nothing was changed or written.' : `Recorded in ${folder.shownFile(FOLDER_FILES.digitaloceanJson)}.`,
      '',
    ].join('\n'),
  );
  return 0;
}
