/**
 * The words for a roll's last check when it times out: which of its two conditions failed. The
 * roll ends when every member reports the target release and the cluster version has moved to the
 * target's minor; saying only "did not report version 3.4" while the cluster reports 3.4.0 hides
 * which one it was.
 */

/**
 * What is still missing, as one phrase: the members not on `target` (`v3.5.30`), and the cluster
 * version if it is not yet the target's minor. `memberVersions`: each member's etcdserver version,
 * or what it answered instead (`no answer (...)`).
 */
export function versionCheckShortfall(target: string, clusterVersion: string, memberVersions: ReadonlyMap<string, string>): string {
  const release = target.replace(/^v/, '');
  const minor = release.split('.').slice(0, 2).join('.');
  const behind = [...memberVersions].filter(([, version]) => version !== release);
  const clusterBehind = !clusterVersion.startsWith(`${minor}.`);
  const members = [...memberVersions].map(([name, version]) => `${name} ${version}`).join(', ');
  const parts = [
    ...(behind.length > 0 ? [behind.length === memberVersions.size ? `no member reported etcd ${release}` : `${behind.map(([name]) => name).join(', ')} did not report etcd ${release}`] : []),
    ...(clusterBehind ? [`the cluster version is ${clusterVersion}, not yet ${minor}`] : []),
  ];
  const what = parts.length > 0 ? parts.join(', and ') : `the cluster did not settle on etcd ${release}`;
  return `${what} (members: ${members}; cluster version ${clusterVersion})`;
}
