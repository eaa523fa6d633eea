import { X509Certificate } from 'node:crypto';
import { FOLDER_FILES, clientCertificate } from '../cluster-folder.js';
import { mintSources, type CommandContext } from '../context.js';
import { dryRunEffects, realEffects } from '../day2/effects.js';
import { folderFromFlags, openCluster, refuseDuringReplacement } from '../day2/open-cluster.js';
import { renderInstallCertsScript, replaceMemberCertificate } from '../day2/renew.js';
import { membersWithoutAgent, noAgentError, renewMembersInPlace, serialOf } from '../day2/renew-in-place.js';
import { CliError, usageError } from '../errors.js';
import { numberFlag, secondsFlagMs, type ParsedOptions } from '../options.js';
import { certificateFiles, recordFiles, userDataFile } from '../output.js';
import { issueLeaf, issueLeafForPublicKey, readClusterPki, withReissued, type IssuedCert } from '../pki/mint.js';
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

/** How long renew-certs waits, by default, for every member to serve its certificate renewed in place. */
export const DEFAULT_RENEW_TIMEOUT_SECONDS = 300;

/** Holds the folder's lock from the first read to the last write. */
export function runRenewCerts(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const now = context.now();
  return folderFromFlags(flags, context).withLock('renew-certs', now, () => renewCerts(flags, context, now));
}

/**
 * validate -> load -> members: in place (each member makes its key, the workstation checks and signs
 * its CSR, waits until it serves the certificate) or, with --via-ssh-script, minted here with an
 * install script each -> admin and clients minted here -> render (user-data) -> write.
 */
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
  const viaScript = flags['via-ssh-script'] === true;
  const timeoutMs = secondsFlagMs(flags, 'timeout', DEFAULT_RENEW_TIMEOUT_SECONDS, 3600, 'is not a number of seconds above 0 and at most 3600');

  const current = readClusterPki(plan, cluster.pki);
  const ca = { certPem: current.ca.certPem, keyPem: current.ca.keyPem };
  const issuePlan = { ...plan, certDays };
  const sources = mintSources(context);
  // A member renewed in place earlier holds its own key (none in pki/): the script fallback then gives it a new one.
  const newKey = (existing: IssuedCert) => rotate || existing.keyPem === '';
  const renew = (existing: IssuedCert) =>
    issueLeaf(issuePlan, existing.fileBase, ca, { now, ...sources, ...(newKey(existing) ? {} : { keyPem: existing.keyPem }) });
  const renewedMembers = new Map<string, IssuedCert>();
  const failed = new Map<string, string>();
  if (viaScript) {
    for (const member of members) renewedMembers.set(member.name, await renew(current.members.get(member.name)!));
  } else if (members.length > 0) {
    // The CA must be able to sign each member's certificate (valid, and outliving --cert-days) before any member is asked.
    for (const member of members) issueLeafForPublicKey(issuePlan, member.name, ca, new X509Certificate(current.members.get(member.name)!.certPem).publicKey, { now });
  }
  if (!viaScript && members.length > 0 && !effects.dryRun) {
    const client = { tls: cluster.adminTls, timeoutMs: 10_000 };
    const endpoints = plan.members.map((member) => member.clientUrl);
    const missing = await membersWithoutAgent(members, endpoints, client).catch((error: Error) => {
      throw new CliError('preflight', `the cluster does not answer, so no member can be asked to renew: ${error.message}`);
    });
    if (missing.length > 0) throw noAgentError(missing);
    const outcome = await renewMembersInPlace({
      plan: issuePlan,
      members,
      currentCerts: new Map(members.map((member) => [member.name, current.members.get(member.name)!.certPem])),
      ca,
      now,
      ...(sources.serialSource ? { serialSource: sources.serialSource } : {}),
      client,
      timeoutMs,
      progress: (line) => void context.stderr.write(`renew-certs: ${line}\n`),
    });
    for (const [name, cert] of outcome.renewed) renewedMembers.set(name, cert);
    for (const [name, reason] of outcome.failed) failed.set(name, reason);
  }
  const done = members.filter((member) => renewedMembers.has(member.name));
  const admin = renewAdmin ? await renew(current.admin) : current.admin;
  // Client certificates by file base: they never go to a node, so renewing one is only files here.
  const renewedClients = new Map<string, IssuedCert>();
  for (const client of clients) {
    const existing = clientCertificate(current, client.name);
    renewedClients.set(existing.fileBase, await renew(existing));
  }

  const pki = withReissued(current, [...renewedMembers.values(), admin, ...renewedClients.values()]);
  const files: OutputFile[] = [];
  const remove: string[] = [];
  // A dry run of an in-place renewal lists the files it would change (the current certificate stands in for the one not yet signed).
  const written = effects.dryRun && !viaScript ? members : done;
  for (const member of written) {
    const cert = renewedMembers.get(member.name) ?? { ...current.members.get(member.name)!, keyPem: '' };
    const userData = folder.readUserData(member.name);
    // In place: the member made its key; the folder keeps the certificate only, and the old key goes.
    const keyChanged = newKey(current.members.get(member.name)!);
    files.push(...certificateFiles(cert, viaScript ? keyChanged : true), userDataFile(member.name, replaceMemberCertificate(plan, member, userData, cert)));
    if (viaScript) files.push({ path: FOLDER_FILES.renewScript(member.name), content: renderInstallCertsScript(plan, member, cert, keyChanged), mode: SECRET_MODE });
    else remove.push(FOLDER_FILES.key(member.name));
  }
  if (renewAdmin) files.push(...certificateFiles(admin, rotate));
  for (const cert of renewedClients.values()) files.push(...certificateFiles(cert, rotate));
  // cluster.json (a --cert-days given here becomes the cluster's default for later renewals and new members) and kubernetes/ with the renewed pair.
  files.push(...recordFiles(issuePlan, pki, now));
  // Scripts of an earlier renewal would install older certificates: only this run's stay.
  remove.push(...folder.renewScripts());
  effects.updateFolder({ files, remove }, crashAtStep(context.env, context.stderr));

  const relative = folder.shown;
  const memberCount = effects.dryRun ? members.length : done.length;
  const renewed = listed([
    ...(memberCount > 0 || members.length === 0 ? [`${memberCount} member certificate(s)${viaScript || memberCount === 0 ? '' : ' in place'}`] : []),
    ...(renewAdmin ? ['the admin certificate'] : []),
    ...(renewedClients.size > 0 ? [`${renewedClients.size} client certificate(s)`] : []),
  ]);
  const memberCert = (name: string) => renewedMembers.get(name);
  const document = {
    dryRun: effects.dryRun,
    clusterName: plan.clusterName,
    keys: rotate ? 'rotated' : 'kept',
    method: viaScript ? 'ssh-script' : 'in-place',
    certDays,
    members: members
      .filter((member) => effects.dryRun || renewedMembers.has(member.name))
      .map((member) => ({
        name: member.name,
        host: member.host,
        certificate: folder.shownFile(FOLDER_FILES.cert(member.name)),
        notAfter: memberCert(member.name)?.notAfter ?? null,
        serial: memberCert(member.name) ? serialOf(memberCert(member.name)!) : null,
        installScript: viaScript ? folder.shownFile(FOLDER_FILES.renewScript(member.name)) : null,
      })),
    failed: [...failed].map(([name, reason]) => ({ name, reason })),
    admin: renewAdmin ? { certificate: folder.shownFile(FOLDER_FILES.cert('admin')), notAfter: admin.notAfter } : null,
    clients: [...renewedClients.values()].map((cert) => ({ name: cert.client!, certificate: folder.shownFile(FOLDER_FILES.cert(cert.fileBase)), notAfter: cert.notAfter })),
  };
  if (effects.dryRun) {
    const how = viaScript || members.length === 0 ? `${rotate ? 'new keys' : 'keys kept'}, ${certDays} days` : `members: a new key each, made on the member; admin and clients: ${rotate ? 'new keys' : 'keys kept'}; ${certDays} days`;
    writeResult(context, document, () => `Dry run: would renew ${renewed} of cluster ${plan.clusterName} (${how}); nothing was written.\n`);
    return 0;
  }
  const memberLine = (name: string) => {
    const cert = memberCert(name)!;
    const where = viaScript ? `  install: ${relative}/${FOLDER_FILES.renewScript(name)}` : `  serial ${serialOf(cert)}, served now (new key made on the member)`;
    return `  ${name.padEnd(8)}${FOLDER_FILES.cert(name)} until ${cert.notAfter.slice(0, 10)}${where}`;
  };
  const lines = [
    `Renewed ${renewed} of cluster ${plan.clusterName} with the existing CA (${viaScript ? (rotate ? 'new keys' : 'keys kept') : `members: new keys, made on each member${renewAdmin || renewedClients.size > 0 ? `; admin and clients: ${rotate ? 'new keys' : 'keys kept'}` : ''}`}):`,
    ...done.map((member) => memberLine(member.name)),
    ...(renewAdmin ? [`  ${'admin'.padEnd(8)}${FOLDER_FILES.cert('admin')} until ${admin.notAfter.slice(0, 10)} (used from here: nothing to install)`] : []),
    ...[...renewedClients.values()].map((cert) => `  ${'client'.padEnd(8)}${FOLDER_FILES.cert(cert.fileBase)} until ${cert.notAfter.slice(0, 10)} (CN=${cert.client}; copy it to the application that uses it)`),
    ...(plan.kubernetes && renewedClients.has(`clients/${plan.kubernetes.clientName}`)
      ? [`  ${relative}/${FOLDER_FILES.kubernetesDir}/ has the renewed kube-apiserver pair: copy it to every control-plane node (see its README.txt)`]
      : []),
    '',
    ...(viaScript && done.length > 0
      ? [
          'Next: install each on its machine, as root, for example:',
          ...done.map((member) => `  ssh root@${member.host} sh -s${rotate ? ' -- --restart' : ''} < ${relative}/${FOLDER_FILES.renewScript(member.name)}`),
          rotate
            ? 'The key changes too: --restart restarts etcd so that it uses the new pair; do one member at a time, checking health in between.'
            : 'etcd reads its certificate files on every new connection, so the new certificate is used at once; no restart is needed.',
          'Then: etcd-cloudinit health (the CERT SERIAL and CERT EXPIRES columns show what each member serves).',
          '',
        ]
      : []),
    ...(!viaScript && done.length > 0 ? [`No member private key is in ${relative}/pki any more for ${listed(done.map((member) => member.name))}: each member holds its own.`, ''] : []),
  ];
  writeResult(context, document, () => lines.join('\n'));
  if (failed.size > 0) {
    throw new CliError('check', `not renewed (the rest above is):\n${[...failed].map(([name, reason]) => `  ${name}: ${reason}`).join('\n')}`);
  }
  return 0;
}
