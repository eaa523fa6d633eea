/** Programmatic entry: the same phases the CLI runs. */
export { main, COMMANDS } from './cli.js';
export { CliError, EXIT_FAILURE, EXIT_USAGE } from './errors.js';
export { resolveClusterInput, clusterSchema, type ClusterInput, type InstallMode } from './input.js';
export { planCluster, NODE_PATHS, type ClusterPlan, type MemberPlan, type InstallPlan, type DownloadInstallPlan, type BakedInstallPlan } from './plan.js';
export { CERT_PROFILES, certRequests, type CertProfile } from './pki/profiles.js';
export { mintPki, nativeKeySource, type ClusterPki, type IssuedCert, type KeySource } from './pki/mint.js';
export { renderUserData, buildCloudConfig, renderMemberFiles, renderUnit, installCommand, USER_DATA_MAX_BYTES } from './render.js';
export { generateCluster, validateClusterFlags } from './commands/gen-userdata.js';
export { writeOutputFolder, readExistingPki } from './write.js';
export { DEFAULT_ETCD_VERSION, DEFAULT_RELEASE_URL } from './versions.js';
export { runHealth } from './commands/health.js';
export { runAddMember } from './commands/add-member.js';
export { runRemoveMember } from './commands/remove-member.js';
export { runRenewCerts } from './commands/renew-certs.js';
export { loadClusterFolder, type ClusterFolder, type ClusterRecord } from './day2/cluster-folder.js';
export { assessHealth, checkMembers, renderHealthTable, type HealthReport, type MemberHealth } from './day2/health.js';
export { issueLeaf, readClusterPki } from './pki/mint.js';
export { updateOutputFolder } from './write.js';
