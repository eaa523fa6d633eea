import { basename } from 'node:path';
import { Document, parse as parseYaml } from 'yaml';
import { CliError } from './errors.js';
import type { ClusterPki, IssuedCert } from './pki/mint.js';
import { bucketUrl, CREDENTIAL_ENV, renderCredentialsFile } from './backup/target.js';
import type { BackupPlan, ClusterPlan, DefragPlan, MemberPlan, NodePaths, RestorePlan, SnapshotPlan } from './plan.js';
import { nodeFile, renderTemplate, shellWord } from './templates.js';

/** DigitalOcean's user_data limit, and a sane bound for any cloud. */
export const USER_DATA_MAX_BYTES = 64 * 1024;

export interface WriteFileEntry {
  path: string;
  content: string;
  owner: string;
  permissions: string;
  defer?: boolean;
}

/** The cloud-config of one member, as data, before it becomes YAML. */
export interface CloudConfig {
  users: (string | Record<string, unknown>)[];
  write_files: WriteFileEntry[];
  runcmd: (string | string[])[];
  final_message: string;
}

/**
 * The systemd unit: it depends only on the node paths, so every member and every baked image
 * (packer/files/etcd.service, kept equal to this by a test) carries the same file.
 */
export function renderUnit(node: NodePaths): string {
  return renderTemplate('etcd.service.ejs', {
    user: node.user,
    etcdBinary: `${node.binDir}/etcd`,
    configFile: node.configFile,
    dataDir: node.dataDir,
    stateDirectory: node.dataDir.replace(/^\/var\/lib\//, ''),
  });
}

/** The text files a member needs, rendered from cloud-init/ with explicit inputs. */
export function renderMemberFiles(plan: ClusterPlan, member: MemberPlan) {
  const { node, listenAddress } = plan;
  return {
    unit: renderUnit(node),
    // DNS-member mode adds its start step as a drop-in, so the unit stays the one every member and image shares.
    listenAddressDropIn:
      listenAddress.source === 'metadata'
        ? renderTemplate('etcd-listen-address.conf.ejs', {
            script: node.listenAddressScript,
            template: node.configTemplate,
            configFile: node.configFile,
            lookup: listenAddress.lookup,
            placeholder: listenAddress.placeholder,
          })
        : undefined,
    config: renderTemplate('etcd.conf.yaml.ejs', {
      member,
      clusterName: plan.clusterName,
      etcdVersion: plan.etcdVersion,
      node,
      initialCluster: plan.initialCluster,
      initialClusterState: member.initialClusterState,
      initialClusterToken: plan.initialClusterToken,
      features: plan.features,
      raftTiming: plan.raftTiming,
      quotaBackendBytes: plan.quotaBackendBytes,
      etcdOptions: plan.etcdConfigOptions,
    }),
    profile: renderTemplate('etcdctl-profile.sh.ejs', { member, node }),
    metadataLockdown:
      listenAddress.source === 'metadata'
        ? renderTemplate('etcd-metadata-lockdown.service.ejs', {
            memberName: member.name,
            clusterName: plan.clusterName,
            address: listenAddress.address,
            script: node.metadataLockdownScript,
          })
        : undefined,
    snapshot: plan.snapshots ? renderSnapshotUnits(plan, member, plan.snapshots) : undefined,
    defrag: plan.defrag ? renderDefragUnits(plan, member, plan.defrag) : undefined,
    promoteService: member.learnerId !== undefined ? renderPromoteUnit(plan, member, member.learnerId) : undefined,
    renewAgent: renderRenewAgentUnits(plan, member),
  };
}

/** systemd splits ExecStart= like a shell but expands % and $: only plain words go there, and %d/<name> (the unit's credentials). */
function execStartLine(what: string, words: readonly string[]): string {
  for (const word of words) {
    if (!/^[A-Za-z0-9_@+=:,./-]+$/.test(word) && !/^%d\/[a-z-]+$/.test(word)) throw new CliError('render', `${what}: ${JSON.stringify(word)} is not a plain word`);
  }
  return words.join(' ');
}

/** How a node's own scripts reach its member: etcdctl, the local client URL and the member's own certificate. */
function localMemberWords(plan: ClusterPlan, member: MemberPlan): string[] {
  const { node } = plan;
  return ['--etcdctl', `${node.binDir}/etcdctl`, '--endpoint', member.localClientUrl, '--cacert', node.caCert, '--cert', node.memberCert, '--key', node.memberKey];
}

/** The command line of etcd-snapshot.service: the script and every input it needs, explicit. */
export function snapshotCommand(plan: ClusterPlan, member: MemberPlan, snapshots: SnapshotPlan): string {
  const { node } = plan;
  const words = [
    node.snapshotScript,
    ...localMemberWords(plan, member),
    '--dir', node.backupDir,
    '--member', member.name,
    '--retain', String(snapshots.retain),
  ];
  return execStartLine('snapshot command', words);
}

/** The name etcd-backup-upload.service loads the key pair under (LoadCredential=): the script reads %d/<name>. */
export const BACKUP_CREDENTIAL_NAME = 'backup';

/** The command line of etcd-backup-upload.service, which each successful snapshot starts (OnSuccess=). */
export function backupUploadCommand(plan: ClusterPlan, member: MemberPlan, backup: BackupPlan): string {
  const { node } = plan;
  return execStartLine('backup upload command', [
    node.backupUploadScript,
    ...localMemberWords(plan, member),
    // 3.4 has no etcdutl; its etcdctl checks a snapshot instead.
    '--etcdutl', plan.features.etcdutl ? `${node.binDir}/etcdutl` : 'none',
    '--dir', node.backupDir,
    '--member', member.name,
    '--bucket-url', bucketUrl(backup),
    ...(backup.prefix !== '' ? ['--prefix', backup.prefix] : []),
    '--region', backup.region,
    '--credentials', `%d/${BACKUP_CREDENTIAL_NAME}`,
    '--retain', String(backup.retain),
  ]);
}

/** The first-boot step of a restored member: download, check, restore into an empty data dir; a shell line for runcmd. */
export function restoreCommand(plan: ClusterPlan, member: MemberPlan, restore: RestorePlan): string {
  const { node } = plan;
  return [
    node.restoreScript,
    '--url-file', node.restoreUrlFile,
    '--sha256', restore.sha256,
    '--name', member.name,
    '--initial-cluster', plan.initialCluster,
    '--initial-advertise-peer-urls', member.peerUrl,
    '--initial-cluster-token', plan.initialClusterToken,
    '--data-dir', node.dataDir,
    '--user', node.user,
    ...(plan.features.etcdutl ? ['--etcdutl', `${node.binDir}/etcdutl`] : ['--etcdctl', `${node.binDir}/etcdctl`]),
  ]
    .map(shellWord)
    .join(' ');
}

/** How long a learner keeps trying to get itself promoted: 360 tries, 10 s apart (an hour of catching up). */
export const PROMOTE_RETRIES = { attempts: 360, intervalSeconds: 10 } as const;

/** The command line of etcd-promote.service: it asks the other (voting) members to promote this one. */
export function promoteCommand(plan: ClusterPlan, member: MemberPlan, learnerId: string): string {
  const { node } = plan;
  const voters = plan.members.filter((other) => other.name !== member.name).map((other) => other.clientUrl);
  return execStartLine('promote command', [
    node.promoteScript,
    '--etcdctl', `${node.binDir}/etcdctl`,
    '--local-url', member.localClientUrl,
    '--endpoints', voters.join(','),
    '--cacert', node.caCert,
    '--cert', node.memberCert,
    '--key', node.memberKey,
    '--member', member.name,
    '--member-id', learnerId,
    '--attempts', String(PROMOTE_RETRIES.attempts),
    '--interval', String(PROMOTE_RETRIES.intervalSeconds),
  ]);
}

/** How often the renewal agent looks for a request: renew-certs waits about this long per member. */
export const RENEW_AGENT_INTERVAL_SECONDS = 20;

/** The command line of etcd-renew-agent.service: its own member first, then the others, with the member's own certificate. */
export function renewAgentCommand(plan: ClusterPlan, member: MemberPlan): string {
  const { node } = plan;
  const others = plan.members.filter((other) => other.name !== member.name).map((other) => other.clientUrl);
  return execStartLine('renew agent command', [
    node.renewAgentScript,
    '--etcdctl', `${node.binDir}/etcdctl`,
    '--endpoints', [member.localClientUrl, ...others].join(','),
    '--cacert', node.caCert,
    '--cert', node.memberCert,
    '--key', node.memberKey,
    '--member', member.name,
    '--state-dir', node.renewStateDir,
  ]);
}

export function renderRenewAgentUnits(plan: ClusterPlan, member: MemberPlan): { service: string; timer: string } {
  const names = { memberName: member.name, clusterName: plan.clusterName };
  return {
    service: renderTemplate('etcd-renew-agent.service.ejs', { ...names, pkiDir: plan.node.pkiDir, execStart: renewAgentCommand(plan, member) }),
    timer: renderTemplate('etcd-renew-agent.timer.ejs', { ...names, intervalSeconds: RENEW_AGENT_INTERVAL_SECONDS }),
  };
}

export function renderPromoteUnit(plan: ClusterPlan, member: MemberPlan, learnerId: string): string {
  return renderTemplate('etcd-promote.service.ejs', {
    memberName: member.name,
    clusterName: plan.clusterName,
    user: plan.node.user,
    execStart: promoteCommand(plan, member, learnerId),
    // Each try may wait up to 30 s on each of its two etcdctl calls.
    timeoutSeconds: PROMOTE_RETRIES.attempts * (PROMOTE_RETRIES.intervalSeconds + 60),
  });
}

export function renderSnapshotUnits(plan: ClusterPlan, member: MemberPlan, snapshots: SnapshotPlan) {
  const { node } = plan;
  return {
    service: renderTemplate('etcd-snapshot.service.ejs', {
      memberName: member.name,
      clusterName: plan.clusterName,
      user: node.user,
      backupDir: node.backupDir,
      tmpfilesConfig: node.snapshotTmpfiles,
      execStart: snapshotCommand(plan, member, snapshots),
      uploadUnit: plan.backup ? basename(node.backupUploadService) : null,
    }),
    upload: plan.backup
      ? renderTemplate('etcd-backup-upload.service.ejs', {
          memberName: member.name,
          clusterName: plan.clusterName,
          user: node.user,
          backupDir: node.backupDir,
          target: `s3://${plan.backup.bucket}/${plan.backup.prefix}`,
          credentialName: BACKUP_CREDENTIAL_NAME,
          credentialsFile: node.backupCredentials,
          execStart: backupUploadCommand(plan, member, plan.backup),
        })
      : undefined,
    tmpfiles: renderTemplate('etcd-snapshot.tmpfiles.conf.ejs', { backupDir: node.backupDir, user: node.user }),
    timer: renderTemplate('etcd-snapshot.timer.ejs', {
      memberName: member.name,
      clusterName: plan.clusterName,
      schedule: snapshots.schedule,
      retain: snapshots.retain,
    }),
  };
}

/** How long etcd-defrag.sh waits for etcd's lock while other members take their turn (the unit's timeout is 2 h). */
export const DEFRAG_LOCK_WAIT_SECONDS = 3600;

/** The command line of etcd-defrag.service: the script and every input it needs, explicit. */
export function defragCommand(plan: ClusterPlan, member: MemberPlan, defrag: DefragPlan): string {
  return execStartLine('defrag command', [
    plan.node.defragScript,
    ...localMemberWords(plan, member),
    '--member', member.name,
    '--threshold', String(defrag.thresholdPercent),
    '--lock-wait', String(DEFRAG_LOCK_WAIT_SECONDS),
  ]);
}

export function renderDefragUnits(plan: ClusterPlan, member: MemberPlan, defrag: DefragPlan) {
  const common = { memberName: member.name, clusterName: plan.clusterName, thresholdPercent: defrag.thresholdPercent };
  return {
    service: renderTemplate('etcd-defrag.service.ejs', { ...common, user: plan.node.user, execStart: defragCommand(plan, member, defrag) }),
    timer: renderTemplate('etcd-defrag.timer.ejs', { ...common, schedule: defrag.schedule }),
  };
}

/**
 * The shell command that gets etcd in place at first boot: download mode installs the verified
 * release; baked mode only checks that the image's etcd has the planned version (exit 1 if not).
 */
export function installCommand(plan: ClusterPlan): string {
  const { install, node } = plan;
  const words =
    install.mode === 'baked'
      ? [node.installScript, 'check', '--version', install.version]
      : [node.installScript, 'install', '--version', install.version, '--release-url', install.releaseUrl];
  if (install.mode === 'download' && install.sha256) words.push('--sha256', install.sha256);
  words.push('--bin-dir', node.binDir);
  return words.map(shellWord).join(' ');
}

export function buildCloudConfig(plan: ClusterPlan, member: MemberPlan, memberCert: IssuedCert, caCertPem: string): CloudConfig {
  const { node } = plan;
  const files = renderMemberFiles(plan, member);
  const etcdOwner = `${node.user}:${node.user}`;
  return {
    users: [
      // Keep the image's default user (and the cloud's SSH keys for it).
      'default',
      { name: node.user, system: true, shell: '/usr/sbin/nologin', homedir: node.dataDir, no_create_home: true, lock_passwd: true },
    ],
    write_files: [
      // Baked mode needs it too: its version check lives in the same script, and the image may predate this one.
      { path: node.installScript, content: nodeFile('install-etcd.sh'), owner: 'root:root', permissions: '0755' },
      ...(files.listenAddressDropIn !== undefined
        ? [{ path: node.listenAddressScript, content: nodeFile('listen-address.sh'), owner: 'root:root', permissions: '0755' }]
        : []),
      { path: node.unitFile, content: files.unit, owner: 'root:root', permissions: '0644' },
      ...(files.listenAddressDropIn !== undefined
        ? [{ path: node.listenAddressDropIn, content: files.listenAddressDropIn, owner: 'root:root', permissions: '0644' }]
        : []),
      ...(files.metadataLockdown !== undefined
        ? [
            { path: node.metadataLockdownScript, content: nodeFile('metadata-lockdown.sh'), owner: 'root:root', permissions: '0755' },
            { path: node.metadataLockdownService, content: files.metadataLockdown, owner: 'root:root', permissions: '0644' },
          ]
        : []),
      // DNS-member mode: the unit writes the real config from this template before each start.
      { path: plan.listenAddress.source === 'metadata' ? node.configTemplate : node.configFile, content: files.config, owner: 'root:root', permissions: '0644' },
      { path: node.caCert, content: caCertPem, owner: 'root:root', permissions: '0644' },
      { path: node.memberCert, content: memberCert.certPem, owner: 'root:root', permissions: '0644' },
      // Owned by the etcd user, which cloud-init creates after the first write_files pass: defer it.
      { path: node.memberKey, content: memberCert.keyPem, owner: etcdOwner, permissions: '0600', defer: true },
      { path: node.profileScript, content: files.profile, owner: 'root:root', permissions: '0644' },
      ...(files.snapshot
        ? [
            { path: node.snapshotScript, content: nodeFile('etcd-snapshot.sh'), owner: 'root:root', permissions: '0755' },
            { path: node.snapshotService, content: files.snapshot.service, owner: 'root:root', permissions: '0644' },
            { path: node.snapshotTimer, content: files.snapshot.timer, owner: 'root:root', permissions: '0644' },
            { path: node.snapshotTmpfiles, content: files.snapshot.tmpfiles, owner: 'root:root', permissions: '0644' },
          ]
        : []),
      ...(files.defrag
        ? [
            { path: node.defragScript, content: nodeFile('etcd-defrag.sh'), owner: 'root:root', permissions: '0755' },
            { path: node.defragService, content: files.defrag.service, owner: 'root:root', permissions: '0644' },
            { path: node.defragTimer, content: files.defrag.timer, owner: 'root:root', permissions: '0644' },
          ]
        : []),
      ...(plan.backup
        ? [
            { path: node.backupUploadScript, content: nodeFile('etcd-backup-upload.sh'), owner: 'root:root', permissions: '0755' },
            { path: node.backupUploadService, content: files.snapshot!.upload!, owner: 'root:root', permissions: '0644' },
            { path: node.backupCredentials, content: backupCredentialsText(plan, plan.backup), owner: 'root:root', permissions: '0600' },
          ]
        : []),
      ...(plan.restore
        ? [
            { path: node.restoreScript, content: nodeFile('etcd-restore.sh'), owner: 'root:root', permissions: '0755' },
            { path: node.restoreUrlFile, content: `${plan.restore.url.reveal()}\n`, owner: 'root:root', permissions: '0600' },
          ]
        : []),
      ...(files.promoteService !== undefined
        ? [
            { path: node.promoteScript, content: nodeFile('etcd-promote.sh'), owner: 'root:root', permissions: '0755' },
            { path: node.promoteService, content: files.promoteService, owner: 'root:root', permissions: '0644' },
          ]
        : []),
      { path: node.renewAgentScript, content: nodeFile('etcd-renew-agent.sh'), owner: 'root:root', permissions: '0755' },
      { path: node.renewAgentService, content: files.renewAgent.service, owner: 'root:root', permissions: '0644' },
      { path: node.renewAgentTimer, content: files.renewAgent.timer, owner: 'root:root', permissions: '0644' },
    ],
    runcmd: [
      [
        'sh',
        '-c',
        [
          'set -eu',
          installCommand(plan),
          // A restored member: its data dir comes from the snapshot, before etcd's first start; a failure stops here.
          ...(plan.restore ? [restoreCommand(plan, member, plan.restore)] : []),
          // One reload for every unit written above; each enable below skips its own (--no-reload): a
          // reload takes seconds on a small machine, and the units are loaded already.
          'systemctl daemon-reload',
          // DNS-member mode: from now on (and early at every boot) only root reaches the metadata service, which serves this user-data.
          ...(files.metadataLockdown !== undefined ? ['systemctl enable --no-reload --now etcd-metadata-lockdown.service'] : []),
          'systemctl enable --no-reload etcd.service',
          // Type=notify blocks until quorum; a blocking start would hang cloud-init on the first member.
          'systemctl start --no-block etcd.service',
          // Its runs wait for etcd (Requisite=) and for a healthy cluster: enabling it now blocks nothing.
          ...(files.defrag ? ['systemctl enable --no-reload --now etcd-defrag.timer'] : []),
          // renew-certs renews the certificate in place through this agent (it registers itself once etcd answers).
          'systemctl enable --no-reload --now etcd-renew-agent.timer',
          // The backup folder now (later boots: systemd-tmpfiles-setup), then the timer.
          ...(files.snapshot ? [`systemd-tmpfiles --create ${node.snapshotTmpfiles}`, 'systemctl enable --no-reload --now etcd-snapshot.timer'] : []),
          // A learner promotes itself once in sync; the unit waits for etcd (After=), so it must not block either.
          ...(files.promoteService !== undefined ? ['systemctl enable --no-reload etcd-promote.service', 'systemctl start --no-block etcd-promote.service'] : []),
        ].join('\n'),
      ],
    ],
    // Printed whether or not runcmd succeeded: it says where to look, not that all went well.
    final_message: `etcd-cloudinit: cloud-init finished on member ${member.name} of cluster ${plan.clusterName} after $UPTIME seconds; 'cloud-init status --long' and 'systemctl status etcd' tell whether etcd is installed and running`,
  };
}

function backupCredentialsText(plan: ClusterPlan, backup: BackupPlan): string {
  if (!backup.credentials) {
    throw new CliError('render', `cluster ${plan.clusterName} uploads backups to s3://${backup.bucket}/${backup.prefix}, and no key pair is known: set ${CREDENTIAL_ENV.accessKeyId} and ${CREDENTIAL_ENV.secretAccessKey}`);
  }
  return renderCredentialsFile(backup.credentials);
}

/** Where etcd comes from, in words: for the user-data header and the summary. */
export function installSource(plan: ClusterPlan): string {
  return plan.install.mode === 'baked' ? 'baked into the image (version checked at boot)' : `from ${plan.install.releaseUrl}`;
}

export function cloudConfigToYaml(plan: ClusterPlan, member: MemberPlan, config: CloudConfig): string {
  const document = new Document(config);
  const header = [
    '#cloud-config',
    `# etcd member ${member.name} (${member.host}) of cluster ${plan.clusterName}: ${plan.members.length} member(s), etcd ${plan.etcdVersion} ${installSource(plan)}.`,
    '# Generated by etcd-cloudinit. Contains this member\'s private key: handle as a secret.',
  ].join('\n');
  return `${header}\n${document.toString({ lineWidth: 0, blockQuote: 'literal' })}`;
}

/** Pure: the user-data of one member. */
export function renderUserData(plan: ClusterPlan, pki: ClusterPki, memberName: string): string {
  const member = plan.members.find((candidate) => candidate.name === memberName);
  const memberCert = pki.members.get(memberName);
  if (!member || !memberCert) throw new Error(`no member ${memberName} in the plan`);
  const config = buildCloudConfig(plan, member, memberCert, pki.ca.certPem);
  const userData = cloudConfigToYaml(plan, member, config);
  checkUserData(memberName, userData, config);
  return userData;
}

/** Re-reads what was rendered: it must be a cloud-config, round-trip to the same data and fit the size limit. */
export function checkUserData(memberName: string, userData: string, expected: unknown): void {
  if (!userData.startsWith('#cloud-config\n')) throw new CliError('check', `user-data of ${memberName} does not start with #cloud-config`);
  const bytes = Buffer.byteLength(userData);
  if (bytes > USER_DATA_MAX_BYTES) {
    throw new CliError('check', `user-data of member ${memberName} is ${bytes} bytes, over the ${USER_DATA_MAX_BYTES}-byte limit of cloud user-data; use a smaller --key-size`);
  }
  const parsed: unknown = parseYaml(userData);
  if (JSON.stringify(parsed) !== JSON.stringify(expected)) {
    throw new CliError('check', `user-data of member ${memberName} does not parse back to what was rendered`);
  }
}
