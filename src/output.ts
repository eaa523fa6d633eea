import { renderCredentialsFile } from './backup/target.js';
import { FOLDER_FILES, clientCertificate, clusterRecordFile } from './cluster-folder.js';
import { clusterRecordOf } from './record-codec.js';
import { renderK3sFlags, renderKubeadmEtcdConfig, renderKubeApiserverFlags, renderKubernetesReadme } from './kubernetes.js';
import type { ClusterPki } from './pki/mint.js';
import type { ClusterPlan } from './plan.js';
import { shellWord } from './templates.js';
import { PUBLIC_MODE, SECRET_MODE, type OutputFile } from './write.js';

/** etcdctl.env: `. out/<cluster>/etcdctl.env` and etcdctl talks to the cluster as admin. */
export function renderEtcdctlEnv(plan: ClusterPlan): string {
  const file = (name: string) => shellWord(`${plan.outDir}/${name}`);
  return [
    // A line break would end the comment and run the rest; only the working folder could still hold one.
    `# Source this file: . ${file(FOLDER_FILES.etcdctlEnv).replace(/[\n\r]/g, '?')}`,
    `# then for example: etcdctl endpoint health --cluster`,
    'export ETCDCTL_API=3',
    `export ETCDCTL_ENDPOINTS=${shellWord(plan.endpoints)}`,
    `export ETCDCTL_CACERT=${file(FOLDER_FILES.cert('ca'))}`,
    `export ETCDCTL_CERT=${file(FOLDER_FILES.cert('admin'))}`,
    `export ETCDCTL_KEY=${file(FOLDER_FILES.key('admin'))}`,
    '',
  ].join('\n');
}

/** A certificate and its key (0600) as folder files. */
export function certificateFiles(cert: { readonly fileBase: string; readonly certPem: string; readonly keyPem: string }, withKey = true): OutputFile[] {
  return [
    { path: FOLDER_FILES.cert(cert.fileBase), content: cert.certPem, mode: PUBLIC_MODE },
    // A member renewed in place holds its own key: there is none to write (keyPem '').
    ...(withKey && cert.keyPem !== '' ? [{ path: FOLDER_FILES.key(cert.fileBase), content: cert.keyPem, mode: SECRET_MODE }] : []),
  ];
}

/** A member's user-data: it holds the member's private key (0600). */
export function userDataFile(member: string, text: string): OutputFile {
  return { path: FOLDER_FILES.userData(member), content: text, mode: SECRET_MODE };
}

/** --kubernetes: kubernetes/ with the client pair (key 0600), the CA and the configs that name the members. */
export function kubernetesFiles(plan: ClusterPlan, pki: ClusterPki): OutputFile[] {
  if (!plan.kubernetes) return [];
  const client = clientCertificate(pki, plan.kubernetes.clientName);
  const files = FOLDER_FILES.kubernetes;
  return [
    { path: files.clientCert, content: client.certPem, mode: PUBLIC_MODE },
    { path: files.clientKey, content: client.keyPem, mode: SECRET_MODE },
    { path: files.caCert, content: pki.ca.certPem, mode: PUBLIC_MODE },
    { path: files.kubeadmConfig, content: renderKubeadmEtcdConfig(plan), mode: PUBLIC_MODE },
    { path: files.apiserverFlags, content: renderKubeApiserverFlags(plan), mode: PUBLIC_MODE },
    { path: files.k3sFlags, content: renderK3sFlags(plan), mode: PUBLIC_MODE },
    { path: files.readme, content: renderKubernetesReadme(plan), mode: PUBLIC_MODE },
  ];
}

/** cluster.json, etcdctl.env and the Kubernetes kit: what changes whenever the members or certificates do. */
export function recordFiles(plan: ClusterPlan, pki: ClusterPki, now: Date): OutputFile[] {
  return [
    clusterRecordFile(clusterRecordOf(plan, pki, now)),
    { path: FOLDER_FILES.etcdctlEnv, content: renderEtcdctlEnv(plan), mode: PUBLIC_MODE },
    ...kubernetesFiles(plan, pki),
  ];
}

/** The bucket key pair (0600), kept so members added later get it in their user-data too. */
export function backupCredentialFiles(plan: ClusterPlan): OutputFile[] {
  const credentials = plan.backup?.credentials;
  return credentials ? [{ path: FOLDER_FILES.backupCredentials, content: renderCredentialsFile(credentials), mode: SECRET_MODE }] : [];
}

/** Every file of out/<cluster>/, keys 0600. */
export function outputFiles(plan: ClusterPlan, pki: ClusterPki, userData: ReadonlyMap<string, string>, generatedAt: Date): OutputFile[] {
  return [
    ...pki.all.flatMap((cert) => certificateFiles(cert)),
    ...[...userData].map(([member, text]) => userDataFile(member, text)),
    ...backupCredentialFiles(plan),
    ...recordFiles(plan, pki, generatedAt),
  ];
}
