import { FOLDER_FILES, renderClusterRecord } from '../cluster-folder.js';
import type { CommandContext } from '../context.js';
import { dryRunEffects, realEffects } from '../day2/effects.js';
import { folderFromFlags, openCluster, refuseDuringReplacement } from '../day2/open-cluster.js';
import { renderInstallCertsScript, replaceMemberCertificate } from '../day2/renew.js';
import { usageError } from '../errors.js';
import { numberFlag, type ParsedOptions } from '../options.js';
import { certificateFiles, userDataFile } from '../output.js';
import { issueLeaf, readClusterPki, type ClusterPki, type IssuedCert } from '../pki/mint.js';
import { writeResult } from '../result.js';
import { PUBLIC_MODE, SECRET_MODE, crashAtStep, type OutputFile } from '../write.js';

function parseCertDays(flags: ParsedOptions, fallback: number): number {
  return numberFlag(flags, 'cert-days', fallback, (days) => Number.isInteger(days) && days >= 1 && days <= 3650, 'is not a whole number of days from 1 to 3650');
}

/** Holds the folder's lock from the first read to the last write. */
export function runRenewCerts(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const now = context.now();
  return folderFromFlags(flags, context).withLock('renew-certs', now, () => renewCerts(flags, context, now));
}

/** validate -> load -> mint (same CA, same profiles) -> render (install scripts, user-data) -> write. */
async function renewCerts(flags: ParsedOptions, context: CommandContext, now: Date): Promise<number> {
  const cluster = openCluster(folderFromFlags(flags, context));
  const { plan, folder } = cluster;
  const effects = flags['dry-run'] === true ? dryRunEffects(folder, (line) => void context.stderr.write(`${line}\n`)) : realEffects(folder);
  refuseDuringReplacement(folder, 'renew-certs');
  const certDays = parseCertDays(flags, plan.certDays);
  const requested = ((flags.member as string[] | undefined) ?? []).flatMap((value) => value.split(',').map((name) => name.trim()));
  for (const name of requested) {
    if (!plan.members.some((member) => member.name === name)) {
      throw usageError('validate', `member: ${JSON.stringify(name)} is not a member (members: ${plan.members.map((member) => member.name).join(', ')})`);
    }
  }
  const members = requested.length > 0 ? plan.members.filter((member) => requested.includes(member.name)) : plan.members;
  const renewAdmin = requested.length === 0 || flags.admin === true;
  const rotate = flags['rotate-keys'] === true;

  const current = readClusterPki(plan, cluster.pki);
  const ca = { certPem: current.ca.certPem, keyPem: current.ca.keyPem };
  const issuePlan = { ...plan, certDays };
  const sources = {
    ...(context.keySource ? { keySource: context.keySource } : {}),
    ...(context.serialSource ? { serialSource: context.serialSource } : {}),
  };
  const renew = (fileBase: string, existing: IssuedCert) =>
    issueLeaf(issuePlan, fileBase, ca, { now, ...sources, ...(rotate ? {} : { keyPem: existing.keyPem }) });
  const renewedMembers = new Map<string, IssuedCert>();
  for (const member of members) renewedMembers.set(member.name, await renew(member.name, current.members.get(member.name)!));
  const admin = renewAdmin ? await renew('admin', current.admin) : current.admin;

  const pki: ClusterPki = {
    ca: current.ca,
    admin,
    members: new Map([...current.members].map(([name, cert]) => [name, renewedMembers.get(name) ?? cert])),
    all: current.all.map((cert) => (cert.fileBase === 'admin' ? admin : (renewedMembers.get(cert.fileBase) ?? cert))),
  };
  const files: OutputFile[] = [];
  for (const member of members) {
    const cert = renewedMembers.get(member.name)!;
    const userData = folder.readUserData(member.name);
    files.push(
      ...certificateFiles(cert, rotate),
      userDataFile(member.name, replaceMemberCertificate(plan, member, userData, cert)),
      { path: FOLDER_FILES.renewScript(member.name), content: renderInstallCertsScript(plan, member, cert, rotate), mode: SECRET_MODE },
    );
  }
  if (renewAdmin) files.push(...certificateFiles(admin, rotate));
  // A --cert-days given here becomes the cluster's default for later renewals and new members.
  files.push({ path: FOLDER_FILES.clusterJson, content: renderClusterRecord(issuePlan, pki, now), mode: PUBLIC_MODE });
  // Scripts of an earlier renewal would install older certificates: only this run's stay.
  effects.updateFolder({ files, remove: folder.renewScripts() }, crashAtStep(context.env, context.stderr));

  const relative = folder.shown;
  const document = {
    dryRun: effects.dryRun,
    clusterName: plan.clusterName,
    keys: rotate ? 'rotated' : 'kept',
    certDays,
    members: members.map((member) => ({
      name: member.name,
      host: member.host,
      certificate: folder.shownFile(FOLDER_FILES.cert(member.name)),
      notAfter: renewedMembers.get(member.name)!.notAfter,
      installScript: folder.shownFile(FOLDER_FILES.renewScript(member.name)),
    })),
    admin: renewAdmin ? { certificate: folder.shownFile(FOLDER_FILES.cert('admin')), notAfter: admin.notAfter } : null,
  };
  if (effects.dryRun) {
    writeResult(context, document, () => `Dry run: would renew ${members.length} member certificate(s)${renewAdmin ? ' and the admin certificate' : ''} of cluster ${plan.clusterName} (${rotate ? 'new keys' : 'keys kept'}, ${certDays} days); nothing was written.\n`);
    return 0;
  }
  const lines = [
    `Renewed ${members.length} member certificate(s)${renewAdmin ? ' and the admin certificate' : ''} of cluster ${plan.clusterName} with the existing CA (${rotate ? 'new keys' : 'keys kept'}):`,
    ...members.map((member) => `  ${member.name.padEnd(8)}${FOLDER_FILES.cert(member.name)} until ${renewedMembers.get(member.name)!.notAfter.slice(0, 10)}  install: ${relative}/${FOLDER_FILES.renewScript(member.name)}`),
    ...(renewAdmin ? [`  ${'admin'.padEnd(8)}${FOLDER_FILES.cert('admin')} until ${admin.notAfter.slice(0, 10)} (used from here: nothing to install)`] : []),
    '',
    ...(members.length > 0
      ? [
          'Next: install each on its machine, as root, for example:',
          ...members.map((member) => `  ssh root@${member.host} sh -s${rotate ? ' -- --restart' : ''} < ${relative}/${FOLDER_FILES.renewScript(member.name)}`),
          rotate
            ? 'The key changes too: --restart restarts etcd so that it uses the new pair; do one member at a time, checking health in between.'
            : 'etcd reads its certificate files on every new connection, so the new certificate is used at once; no restart is needed.',
          'Then: etcd-cloudinit health (the CERT EXPIRES column shows what each member serves).',
        ]
      : []),
    '',
  ];
  writeResult(context, document, () => lines.join('\n'));
  return 0;
}

