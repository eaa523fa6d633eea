import { DEFAULT_KEY_TYPE as DEFAULT_KEY_TYPE_NAME, DEFAULT_RSA_KEY_SIZE as DEFAULT_RSA_BITS } from './defaults.js';

/** The key types etcd-cloudinit mints (kubeadm's `encryptionAlgorithm` names) and their defaults: the input's vocabulary; pki/ mints them. */
export const KEY_TYPES = ['rsa', 'ecdsa-p256', 'ecdsa-p384'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const DEFAULT_KEY_TYPE: KeyType = DEFAULT_KEY_TYPE_NAME;

export type RsaKeySize = 2048 | 3072 | 4096;
export const DEFAULT_RSA_KEY_SIZE: RsaKeySize = DEFAULT_RSA_BITS;
