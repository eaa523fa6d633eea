import { FOLDER_FILES, clientCertificate } from '../cluster-folder.js';
import { mintSources, type CommandContext } from '../context.js';
import { dryRunEffects, realEffects } from '../day2/effects.js';
import { folderFromFlags, openCluster, refuseDuringReplacement } from '../day2/open-cluster.js';
import { renderInstallCertsScript, replaceMemberCertificate } from '../day2/renew.js';
import { usageError } from '../errors.js';
import { numberFlag, type ParsedOptions } from '../options.js';
import { certificateFiles, recordFiles, userDataFile } from '../output.js';
import { issueLeaf, readClusterPki, withReissued, type IssuedCert } from '../pki/mint.js';
import { writeResult } from '../result.js';
import { SECRET_MODE, crashAtStep, type OutputFile } from '../write.js';

function parseCertDays(flags: ParsedOptions, fallback: number): number {
  return numberFlag(flags, 'cert-days', fallback, (days) => Number.isInteger(days) && days >= 1 && days <= 3650, 'is not a whole number of days from 1 to 3650');
}

/** `a`, `a and b`, `a, b and c`. */
function listed(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** A repeatable, comma-separated flag's names; an empty one stays, so that it is refused rather than read as "all". */
function namesFlag(flags: ParsedOptions, name: string): string[] {
  return ((flags[name] as string[] | undefined) ?? []).flatMap((value) => value.split(',').map((item) => item.trim()));
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
  const requested = namesFlag(flags, 'member');
  for (const name of requested) {
    if (!plan.members.some((member) => member.name === name)) {
      throw usageError('validate', `member: ${JSON.stringify(name)} is not a member (members: ${plan.members.map((member) => member.name).join(', ')})`);
    }
  }
  const requestedClients = namesFlag(flags, 'client');
  for (const name of requestedClients) {
    if (!plan.clients.some((client) => client.name === name)) {
      const known = plan.clients.map((client) => client.name).join(', ');
      throw usageError('validate', `client: ${JSON.stringify(name)} is not a client certificate of this cluster (${known === '' ? 'it has none; gen-userdata --client mints them' : `clients: ${known}`})`);
    }
  }
  const everything = requested.length === 0 && requestedClients.length === 0;
  const members = everything ? plan.members : plan.members.filter((member) => requested.includes(member.name));
  const clients = everything ? plan.clients : plan.clients.filter((client) => requestedClients.includes(client.name));
  const renewAdmin = everything || flags.admin === true;
  const rotate = flags['rotate-keys'] === true;

  const current = readClusterPki(plan, cluster.pki);
  const ca = { certPem: current.ca.certPem, keyPem: current.ca.keyPem };
  const issuePlan = { ...plan, certDays };
  const sources = mintSources(context);
  const renew = (existing: IssuedCert) =>
    issueLeaf(issuePlan, existing.fileBase, ca, { now, ...sources, ...(rotate ? {} : { keyPem: existing.keyPem }) });
  const renewedMembers = new Map<string, IssuedCert>();
  for (const member of members) renewedMembers.set(member.name, await renew(current.members.get(member.name)!));
  const admin = renewAdmin ? await renew(current.admin) : current.admin;
  // Client certificates by file base: they never go to a node, so renewing one is only files here.
  const renewedClients = new Map<string, IssuedCert>();
  for (const client of clients) {
    const existing = clientCertificate(current, client.name);
    renewedClients.set(existing.fileBase, await renew(existing));
  }

  const pki = withReissued(current, [...renewedMembers.values(), admin, ...renewedClients.values()]);
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
  for (const cert of renewedClients.values()) files.push(...certificateFiles(cert, rotate));
  // cluster.json (a --cert-days given here becomes the cluster's default for later renewals and new members) and kubernetes/ with the renewed pair.
  files.push(...recordFiles(issuePlan, pki, now));
  // Scripts of an earlier renewal would install older certificates: only this run's stay.
  effects.updateFolder({ files, remove: folder.renewScripts() }, crashAtStep(context.env, context.stderr));

  const relative = folder.shown;
  const renewed = listed([`${members.length} member certificate(s)`, ...(renewAdmin ? ['the admin certificate'] : []), ...(renewedClients.size > 0 ? [`${renewedClients.size} client certificate(s)`] : [])]);
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
    clients: [...renewedClients.values()].map((cert) => ({ name: cert.client!, certificate: folder.shownFile(FOLDER_FILES.cert(cert.fileBase)), notAfter: cert.notAfter })),
  };
  if (effects.dryRun) {
    writeResult(context, document, () => `Dry run: would renew ${renewed} of cluster ${plan.clusterName} (${rotate ? 'new keys' : 'keys kept'}, ${certDays} days); nothing was written.\n`);
    return 0;
  }
  const lines = [
    `Renewed ${renewed} of cluster ${plan.clusterName} with the existing CA (${rotate ? 'new keys' : 'keys kept'}):`,
    ...members.map((member) => `  ${member.name.padEnd(8)}${FOLDER_FILES.cert(member.name)} until ${renewedMembers.get(member.name)!.notAfter.slice(0, 10)}  install: ${relative}/${FOLDER_FILES.renewScript(member.name)}`),
    ...(renewAdmin ? [`  ${'admin'.padEnd(8)}${FOLDER_FILES.cert('admin')} until ${admin.notAfter.slice(0, 10)} (used from here: nothing to install)`] : []),
    ...[...renewedClients.values()].map((cert) => `  ${'client'.padEnd(8)}${FOLDER_FILES.cert(cert.fileBase)} until ${cert.notAfter.slice(0, 10)} (CN=${cert.client}; copy it to the application that uses it)`),
    ...(plan.kubernetes && renewedClients.has(`clients/${plan.kubernetes.clientName}`)
      ? [`  ${relative}/${FOLDER_FILES.kubernetesDir}/ has the renewed kube-apiserver pair: copy it to every control-plane node (see its README.txt)`]
      : []),
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

