import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandContext } from '../context.js';
import { FOLDER_OPTIONS, loadClusterFolder, withClusterFolderLock } from '../day2/cluster-folder.js';
import { relativeTo } from '../day2/paths.js';
import { renderInstallCertsScript, replaceMemberCertificate } from '../day2/renew.js';
import { CliError, usageError } from '../errors.js';
import type { OptionSpec, ParsedOptions } from '../options.js';
import { renderClusterJson } from '../output.js';
import { issueLeaf, readClusterPki, type ClusterPki, type IssuedCert } from '../pki/mint.js';
import { PUBLIC_MODE, SECRET_MODE, updateOutputFolder, type OutputFile } from '../write.js';

export const RENEW_CERTS_OPTIONS: readonly OptionSpec[] = [
  { name: 'member', type: 'string', multiple: true, valueName: 'name', description: 'Renew only this member (repeat or comma-separate; default: every member and the admin certificate)' },
  { name: 'admin', type: 'boolean', description: 'With --member: renew the admin certificate too' },
  { name: 'rotate-keys', type: 'boolean', description: 'Generate new keys too (default: keep each key, so installing is one file and no restart)' },
  { name: 'cert-days', type: 'string', valueName: 'days', description: "Validity of the renewed certificates (default: certDays in cluster.json; a new value is stored there)" },
  ...FOLDER_OPTIONS,
  { name: 'help', type: 'boolean', short: 'h', description: 'Show this help' },
];

function parseCertDays(flags: ParsedOptions, fallback: number): number {
  const raw = flags['cert-days'];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 3650) {
    throw usageError('validate', `cert-days: ${JSON.stringify(raw)} is not a whole number of days from 1 to 3650`);
  }
  return Number(raw);
}

/** Holds the folder's lock from the first read to the last write. */
export function runRenewCerts(flags: ParsedOptions, context: CommandContext): Promise<number> {
  return withClusterFolderLock(flags, context, 'renew-certs', () => renewCerts(flags, context));
}

/** validate -> load -> mint (same CA, same profiles) -> render (install scripts, user-data) -> write. */
async function renewCerts(flags: ParsedOptions, context: CommandContext): Promise<number> {
  const folder = loadClusterFolder(flags, context);
  const { plan } = folder;
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

  const current = readClusterPki(plan, folder.existingPki);
  const ca = { certPem: current.ca.certPem, keyPem: current.ca.keyPem };
  const now = context.now();
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
    let userData: string;
    try {
      userData = readFileSync(join(folder.outDir, 'user-data', `${member.name}.yaml`), 'utf8');
    } catch (error) {
      throw new CliError('parse', `user-data/${member.name}.yaml: cannot read it: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    files.push(
      { path: `pki/${member.name}.crt`, content: cert.certPem, mode: PUBLIC_MODE },
      ...(rotate ? [{ path: `pki/${member.name}.key`, content: cert.keyPem, mode: SECRET_MODE }] : []),
      { path: `user-data/${member.name}.yaml`, content: replaceMemberCertificate(plan, member, userData, cert), mode: SECRET_MODE },
      { path: `renew/${member.name}.sh`, content: renderInstallCertsScript(plan, member, cert, rotate), mode: SECRET_MODE },
    );
  }
  if (renewAdmin) {
    files.push({ path: 'pki/admin.crt', content: admin.certPem, mode: PUBLIC_MODE });
    if (rotate) files.push({ path: 'pki/admin.key', content: admin.keyPem, mode: SECRET_MODE });
  }
  // A --cert-days given here becomes the cluster's default for later renewals and new members.
  files.push({ path: 'cluster.json', content: renderClusterJson(issuePlan, pki, now), mode: PUBLIC_MODE });
  // Scripts of an earlier renewal would install older certificates: only this run's stay.
  const staleScripts = listFolder(join(folder.outDir, 'renew')).map((entry) => `renew/${entry}`);
  updateOutputFolder(folder.outDir, { files, remove: staleScripts });

  const relative = relativeTo(folder.outDir, context.cwd);
  const lines = [
    `Renewed ${members.length} member certificate(s)${renewAdmin ? ' and the admin certificate' : ''} of cluster ${plan.clusterName} with the existing CA (${rotate ? 'new keys' : 'keys kept'}):`,
    ...members.map((member) => `  ${member.name.padEnd(8)}pki/${member.name}.crt until ${renewedMembers.get(member.name)!.notAfter.slice(0, 10)}  install: ${relative}/renew/${member.name}.sh`),
    ...(renewAdmin ? [`  ${'admin'.padEnd(8)}pki/admin.crt until ${admin.notAfter.slice(0, 10)} (used from here: nothing to install)`] : []),
    '',
    ...(members.length > 0
      ? [
          'Next: install each on its machine, as root, for example:',
          ...members.map((member) => `  ssh root@${member.ip} sh -s${rotate ? ' -- --restart' : ''} < ${relative}/renew/${member.name}.sh`),
          rotate
            ? 'The key changes too: --restart restarts etcd so that it uses the new pair; do one member at a time, checking health in between.'
            : 'etcd reads its certificate files on every new connection, so the new certificate is used at once; no restart is needed.',
          'Then: etcd-cloudinit health (the CERT EXPIRES column shows what each member serves).',
        ]
      : []),
    '',
  ];
  context.stdout.write(lines.join('\n'));
  return 0;
}

function listFolder(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
