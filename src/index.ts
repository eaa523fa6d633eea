/** Programmatic entry: the same phases the CLI runs. */
export { main, COMMANDS } from './cli.js';
export { CliError, EXIT_FAILURE, EXIT_USAGE } from './errors.js';
export { resolveClusterInput, clusterSchema, memberHostname, type ClusterInput, type MemberInput, type InstallMode } from './input.js';
export { planCluster, NODE_PATHS, type ClusterPlan, type MemberPlan, type InstallPlan, type DownloadInstallPlan, type BakedInstallPlan } from './plan.js';
export { CERT_PROFILES, certRequests, type CertProfile } from './pki/profiles.js';
export { mintPki, nativeKeySource, type ClusterPki, type IssuedCert, type KeySource } from './pki/mint.js';
export { renderUserData, buildCloudConfig, renderMemberFiles, renderUnit, installCommand, USER_DATA_MAX_BYTES } from './render.js';
export { generateCluster, validateClusterFlags } from './commands/gen-userdata.js';
export { writeOutputFolder, readExistingPki } from './write.js';
export { DEFAULT_ETCD_VERSION, DEFAULT_RELEASE_URL } from './versions.js';
export { createDigitalOceanApi, resolveDigitalOceanConfig, DigitalOceanApiError, type DigitalOceanApi, type DigitalOceanConfig } from './digitalocean/client.js';
export { createDropletCluster, findDropletCluster, destroyDropletCluster, firewallSpec, clusterTag, type DropletClusterSpec, type CreateResult } from './digitalocean/cluster.js';
