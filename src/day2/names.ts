/**
 * The member names a cluster has used, so that add-member, roll and repair never hand one out twice:
 * a member that left keeps a valid certificate for its name (and, on a `--domain` cluster, for the
 * DNS name derived from it) until that certificate expires.
 *
 * The history is read from every place the folder keeps it, together: cluster.json's members and
 * retiredMembers (written since this record existed, by every command that drops a member), roll.json
 * (the replacements of every roll and repair, and the one in progress), the member certificates
 * still in pki/ (a run cut short may leave one), and the machines that still hold a name (a droplet).
 * A folder written before retiredMembers existed so still knows the names its rolls and repairs
 * replaced; a member removed by remove-member of such a release left no trace, and is not known.
 */
import { FOLDER_FILES, type ClusterFolder, type ClusterRecord } from '../cluster-folder.js';
import { RESERVED_MEMBER_NAMES } from '../input.js';
import type { KeyPairPem } from '../pki/mint.js';

/** What a day-2 command has open: cluster.json, the folder (roll.json) and pki/'s file bases. */
export interface NameSources {
  readonly folder: Pick<ClusterFolder, 'readRollState'>;
  readonly record: Pick<ClusterRecord, 'members' | 'retiredMembers'>;
  readonly pki: ReadonlyMap<string, Partial<KeyPairPem>>;
}

/** Every name the cluster has used, each with where it was seen (for the message that refuses it); the first source found wins. */
export function usedMemberNames(sources: NameSources, heldNames: readonly string[]): Map<string, string> {
  const used = new Map<string, string>();
  const see = (name: string, why: string) => void (used.has(name) ? undefined : used.set(name, why));
  for (const member of sources.record.members) see(member.name, 'is already a member');
  for (const name of sources.record.retiredMembers ?? []) see(name, `was a member that left (${FOLDER_FILES.clusterJson} retiredMembers)`);
  const roll = sources.folder.readRollState();
  for (const entry of roll?.history ?? []) {
    see(entry.old, `was a member, replaced by ${entry.replacement} in a ${entry.operation} (${FOLDER_FILES.rollJson})`);
    see(entry.replacement, `was the replacement of ${entry.old} in a ${entry.operation} (${FOLDER_FILES.rollJson})`);
  }
  for (const step of roll?.current?.steps ?? []) {
    see(step.old, `is a member the ${roll!.current!.operation} in progress replaces (${FOLDER_FILES.rollJson})`);
    see(step.replacement.name, `is the replacement of ${step.old} in the ${roll!.current!.operation} in progress (${FOLDER_FILES.rollJson})`);
  }
  for (const fileBase of sources.pki.keys()) {
    if (fileBase.includes('/') || RESERVED_MEMBER_NAMES.includes(fileBase)) continue; // clients/<name>, ca, admin
    see(fileBase, `has a certificate in the folder (${FOLDER_FILES.cert(fileBase)})`);
  }
  for (const name of heldNames) see(name, 'is held by a machine of the cluster (a droplet)');
  return used;
}
