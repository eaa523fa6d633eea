import { X509Certificate } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { CliError } from '../errors.js';
import type { IssuedCert } from '../pki/mint.js';
import type { ClusterPlan, MemberPlan } from '../plan.js';
import { checkUserData, cloudConfigToYaml, type CloudConfig } from '../render.js';
import { renderTemplate } from '../templates.js';

/** Pure: the script that installs a renewed certificate (and key, when rotated) on a member's machine. */
export function renderInstallCertsScript(plan: ClusterPlan, member: MemberPlan, cert: IssuedCert, keyRotated: boolean): string {
  return renderTemplate('install-certs.sh.ejs', {
    memberName: member.name,
    memberHost: member.host,
    clusterName: plan.clusterName,
    node: plan.node,
    certPem: cert.certPem,
    keyPem: keyRotated ? cert.keyPem : undefined,
    serial: new X509Certificate(cert.certPem).serialNumber,
    notAfter: cert.notAfter,
  });
}

/**
 * Pure: the member's user-data with the renewed certificate (and key) in place of the old ones and
 * nothing else changed, so a machine rebuilt from it starts with a valid certificate. A certificate
 * renewed in place comes without a key (keyPem ''): the member made it and keeps it, so the old key
 * leaves the user-data too, and the file can no longer boot a new machine (roll and repair write new user-data).
 */
export function replaceMemberCertificate(plan: ClusterPlan, member: MemberPlan, userData: string, cert: IssuedCert): string {
  const config = parseYaml(userData) as CloudConfig;
  const replacements = new Map<string, string>([
    [plan.node.memberCert, cert.certPem],
    [plan.node.memberKey, cert.keyPem],
  ]);
  let replaced = 0;
  for (const file of config.write_files ?? []) {
    const content = replacements.get(file.path);
    if (content !== undefined) {
      file.content = content;
      replaced += 1;
    }
  }
  if (cert.keyPem === '') config.write_files = (config.write_files ?? []).filter((file) => file.path !== plan.node.memberKey);
  else if (!(config.write_files ?? []).some((file) => file.path === plan.node.memberKey)) {
    // Renewed in place before (no key here), now by the script fallback with a new key: the user-data gets one again, as gen-userdata writes it.
    config.write_files = [...(config.write_files ?? []), { path: plan.node.memberKey, content: cert.keyPem, owner: `${plan.node.user}:${plan.node.user}`, permissions: '0600', defer: true }];
    replaced += 1;
  }
  if (replaced < (cert.keyPem === '' ? 1 : replacements.size)) {
    throw new CliError('render', `user-data/${member.name}.yaml: has no ${[...replacements.keys()].join(' and ')} entries in write_files; was it written by etcd-cloudinit?`);
  }
  const text = cloudConfigToYaml(plan, member, config);
  checkUserData(member.name, text, config);
  return text;
}
