/**
 * The etcd release installed when the user does not choose one. The one place it is set.
 *
 * The newest patch of 3.6, not 3.7: 3.6 is the minor with a long run of patch releases behind it,
 * and a cluster made on it can move to 3.7 later with `roll --etcd-version v3.7.x` (one minor at a
 * time, as etcd upgrades), while a cluster made on 3.7 can never go back to 3.6 by replacement.
 * docs/reference.md "Choosing the etcd version" says how to check for a newer patch.
 */
export const DEFAULT_ETCD_VERSION = 'v3.6.16';

/** Official release downloads: `<url>/<version>/etcd-<version>-linux-amd64.tar.gz` and `SHA256SUMS`. */
export const DEFAULT_RELEASE_URL = 'https://github.com/etcd-io/etcd/releases/download';

export interface EtcdVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** As written in release URLs: `v3.6.16`. */
  readonly tag: string;
}

const VERSION_PATTERN = /^v(\d+)\.(\d+)\.(\d+)$/;

export function parseEtcdVersion(tag: string): EtcdVersion | undefined {
  const match = VERSION_PATTERN.exec(tag);
  if (!match) return undefined;
  const [major, minor, patch] = match.slice(1).map(Number) as [number, number, number];
  return { major, minor, patch, tag };
}

function atLeast(version: EtcdVersion, minor: number, patch: number): boolean {
  return version.minor > minor || (version.minor === minor && version.patch >= patch);
}

/** What the chosen release accepts in its config file, so we never write a key it rejects or ignores. */
export interface EtcdFeatures {
  /** `tls-min-version` exists from 3.4.25 and 3.5.8. */
  readonly tlsMinVersion: boolean;
  /** 3.6 removed the v2 API flags (`enable-v2`). */
  readonly v2Flags: boolean;
  /** `etcdutl` ships in the tarball from 3.5 on. */
  readonly etcdutl: boolean;
  /** `logger` selects zap in 3.4; later releases only have zap and ignore the key. */
  readonly loggerKey: boolean;
}

export function featuresOf(version: EtcdVersion): EtcdFeatures {
  return {
    tlsMinVersion: version.minor === 4 ? atLeast(version, 4, 25) : atLeast(version, 5, 8),
    v2Flags: version.minor < 6,
    etcdutl: version.minor >= 5,
    loggerKey: version.minor === 4,
  };
}

/**
 * etcd's upgrade rules for a rolling replacement from `from` to `to`: one minor at a time
 * (3.4 -> 3.5 -> 3.6), never down a minor, any patch within a minor. A sentence on why not, or undefined.
 */
export function upgradeRefusal(from: EtcdVersion, to: EtcdVersion): string | undefined {
  if (to.major !== from.major) return `${to.tag} is another major version than the cluster's ${from.tag}`;
  if (to.minor < from.minor) return `${to.tag} would downgrade the cluster from ${from.tag}; etcd does not support downgrades by replacement`;
  if (to.minor > from.minor + 1) {
    return `${to.tag} skips a minor version: upgrade ${from.tag} to the latest v${from.major}.${from.minor + 1}.x first (etcd upgrades one minor version at a time)`;
  }
  return undefined;
}
