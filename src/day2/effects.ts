import { FOLDER_FILES, type ClusterFolder, type DigitalOceanState } from '../cluster-folder.js';
import { hexMemberId, memberAdd, memberPromote, memberRemove, moveLeader, type ClientOptions, type MemberAddResponse } from '../etcd/client.js';
import type { FolderUpdate, WriteStep } from '../write.js';

/**
 * Everything a day-2 command changes: the cluster's membership and the files of its folder.
 * Commands run one flow against this; --dry-run swaps in a recorder that prints each change and
 * makes none (DigitalOcean calls get the same treatment from digitalocean/dry-run.ts).
 */
export interface Day2Effects {
  readonly dryRun: boolean;
  memberAdd(endpoint: string, peerUrl: string, client: ClientOptions, learner: boolean): Promise<MemberAddResponse>;
  memberRemove(endpoint: string, memberId: string, client: ClientOptions): Promise<void>;
  memberPromote(endpoint: string, memberId: string, client: ClientOptions): Promise<void>;
  moveLeader(leaderEndpoint: string, targetId: string, client: ClientOptions): Promise<void>;
  updateFolder(update: FolderUpdate, step?: WriteStep): void;
  saveDigitalOceanState(state: Omit<DigitalOceanState, 'formatVersion'>): void;
}

export function realEffects(folder: ClusterFolder): Day2Effects {
  return {
    dryRun: false,
    memberAdd: (endpoint, peerUrl, client, learner) => memberAdd(endpoint, [peerUrl], { ...client, learner }),
    memberRemove: (endpoint, memberId, client) => memberRemove(endpoint, memberId, client),
    memberPromote: (endpoint, memberId, client) => memberPromote(endpoint, memberId, client),
    moveLeader: (leaderEndpoint, targetId, client) => moveLeader(leaderEndpoint, targetId, client),
    updateFolder: (update, step) => folder.update(update, step),
    saveDigitalOceanState: (state) => folder.writeDigitalOceanState(state),
  };
}

/** The member ID a dry run shows for a member it did not add. */
export const DRY_RUN_MEMBER_ID = '0';

export function dryRunEffects(folder: ClusterFolder, progress: (line: string) => void): Day2Effects {
  return {
    dryRun: true,
    memberAdd: async (endpoint, peerUrl, _client, learner) => {
      progress(`[dry-run] etcd ${endpoint}: member add ${peerUrl}${learner ? ' as a learner' : ''}`);
      return { member: { ID: DRY_RUN_MEMBER_ID, peerURLs: [peerUrl], ...(learner ? { isLearner: true } : {}) } };
    },
    memberRemove: async (endpoint, memberId) => {
      progress(`[dry-run] etcd ${endpoint}: member remove ${hexMemberId(memberId)}`);
    },
    memberPromote: async (endpoint, memberId) => {
      progress(`[dry-run] etcd ${endpoint}: member promote ${hexMemberId(memberId)}`);
    },
    moveLeader: async (endpoint, targetId) => {
      progress(`[dry-run] etcd ${endpoint}: move leader to ${hexMemberId(targetId)}`);
    },
    updateFolder: (update) => {
      const files = update.files.map((file) => file.path);
      if (files.length > 0) progress(`[dry-run] write ${files.map((file) => folder.shownFile(file)).join(', ')}`);
      if ((update.remove ?? []).length > 0) progress(`[dry-run] delete ${update.remove!.map((file) => folder.shownFile(file)).join(', ')}`);
    },
    saveDigitalOceanState: () => progress(`[dry-run] write ${folder.shownFile(FOLDER_FILES.digitaloceanJson)}`),
  };
}
