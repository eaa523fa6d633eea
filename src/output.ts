import type { ClusterPki, IssuedCert } from './pki/mint.js';
import type { ClusterPlan } from './plan.js';
import { shellWord } from './templates.js';
import { PUBLIC_MODE, SECRET_MODE, type OutputFile } from './write.js';

function certSummary(cert: IssuedCert) {
  return { file: `pki/${cert.fileBase}.crt`, sha256Fingerprint: cert.sha256Fingerprint, notAfter: cert.notAfter };
}

/** cluster.json: what was generated, for the operator and for day-2 commands. */
export function renderClusterJson(plan: ClusterPlan, pki: ClusterPki, generatedAt: Date): string {
  const description = {
    clusterName: plan.clusterName,
    etcdVersion: plan.etcdVersion,
    install: plan.install,
    initialCluster: plan.initialCluster,
    initialClusterToken: plan.initialClusterToken,
    endpoints: plan.members.map((member) => member.clientUrl),
    keySize: plan.keySize,
    certDays: plan.certDays,
    raftTiming: plan.raftTiming,
    snapshots: plan.snapshots ?? false,
    members: plan.members.map((member) => ({
      name: member.name,
      ...(member.ip !== undefined ? { ip: member.ip } : { hostname: member.hostname }),
      peerUrl: member.peerUrl,
      clientUrl: member.clientUrl,
      userData: `user-data/${member.name}.yaml`,
      certificate: certSummary(pki.members.get(member.name)!),
    })),
    ca: certSummary(pki.ca),
    admin: certSummary(pki.admin),
    generatedAt: generatedAt.toISOString(),
  };
  return `${JSON.stringify(description, null, 2)}\n`;
}

/** etcdctl.env: `. out/<cluster>/etcdctl.env` and etcdctl talks to the cluster as admin. */
export function renderEtcdctlEnv(plan: ClusterPlan): string {
  const pki = `${plan.outDir}/pki`;
  return [
    `# Source this file: . ${shellWord(`${plan.outDir}/etcdctl.env`)}`,
    `# then for example: etcdctl endpoint health --cluster`,
    'export ETCDCTL_API=3',
    `export ETCDCTL_ENDPOINTS=${shellWord(plan.endpoints)}`,
    `export ETCDCTL_CACERT=${shellWord(`${pki}/ca.crt`)}`,
    `export ETCDCTL_CERT=${shellWord(`${pki}/admin.crt`)}`,
    `export ETCDCTL_KEY=${shellWord(`${pki}/admin.key`)}`,
    '',
  ].join('\n');
}

/** Every file of out/<cluster>/, keys 0600. */
export function outputFiles(plan: ClusterPlan, pki: ClusterPki, userData: ReadonlyMap<string, string>, generatedAt: Date): OutputFile[] {
  return [
    ...pki.all.flatMap((cert) => [
      { path: `pki/${cert.fileBase}.crt`, content: cert.certPem, mode: PUBLIC_MODE },
      { path: `pki/${cert.fileBase}.key`, content: cert.keyPem, mode: SECRET_MODE },
    ]),
    // User-data holds the member's private key.
    ...[...userData].map(([member, text]) => ({ path: `user-data/${member}.yaml`, content: text, mode: SECRET_MODE })),
    { path: 'cluster.json', content: renderClusterJson(plan, pki, generatedAt), mode: PUBLIC_MODE },
    { path: 'etcdctl.env', content: renderEtcdctlEnv(plan), mode: PUBLIC_MODE },
  ];
}
