import type { ClientPlan, ClusterPlan, MemberPlan } from '../plan.js';

/** X.509 keyUsage bits we set; names as node-forge spells them. */
export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';
export type ExtKeyUsage = 'serverAuth' | 'clientAuth';

export type SubjectAltName = { readonly type: 'ip'; readonly value: string } | { readonly type: 'dns'; readonly value: string };

export type ProfileId = 'ca' | 'member' | 'admin' | 'client';

/** The subject's O of every certificate but the ones a client's preset says otherwise for. */
export const SUBJECT_ORGANIZATION = 'etcd-cloudinit';

/** One kind of certificate, declared as data (after kubeadm's certlist). */
export interface CertProfile {
  readonly id: ProfileId;
  readonly description: string;
  /** null for the self-signed CA. */
  readonly issuer: ProfileId | null;
  /** One certificate for the cluster, one per member, or one per named client (plan.clients). */
  readonly scope: 'cluster' | 'member' | 'client';
  readonly isCa: boolean;
  readonly keyUsage: readonly KeyUsage[];
  readonly extKeyUsage: readonly ExtKeyUsage[];
  /** File base name under pki/: `<base>.crt` and `<base>.key`. */
  readonly fileBase: (member: MemberPlan | undefined, client?: ClientPlan) => string;
  readonly commonName: (plan: ClusterPlan, member: MemberPlan | undefined, client?: ClientPlan) => string;
  /** The subject's O; undefined for none. */
  readonly organization: (client?: ClientPlan) => string | undefined;
  readonly subjectAltNames: (plan: ClusterPlan, member: MemberPlan | undefined) => readonly SubjectAltName[];
  readonly validityDays: (plan: ClusterPlan) => number;
}

function requireClient(client: ClientPlan | undefined): ClientPlan {
  if (!client) throw new Error('client profile used without a client');
  return client;
}

function requireMember(member: MemberPlan | undefined): MemberPlan {
  if (!member) throw new Error('member profile used without a member');
  return member;
}

/** Ordered: an issuer always comes before the certificates it signs. */
export const CERT_PROFILES: readonly CertProfile[] = [
  {
    id: 'ca',
    description: 'Cluster CA: signs every other certificate; its key never leaves the workstation',
    issuer: null,
    scope: 'cluster',
    isCa: true,
    keyUsage: ['keyCertSign', 'cRLSign', 'digitalSignature'],
    extKeyUsage: [],
    fileBase: () => 'ca',
    commonName: (plan) => `${plan.clusterName} etcd CA`,
    organization: () => SUBJECT_ORGANIZATION,
    subjectAltNames: () => [],
    validityDays: (plan) => plan.caDays,
  },
  {
    id: 'member',
    description:
      'Member certificate: serves clients and peers and is presented as a client on the peer port, so it needs serverAuth and clientAuth (required since etcd 3.4)',
    issuer: 'ca',
    scope: 'member',
    isCa: false,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extKeyUsage: ['serverAuth', 'clientAuth'],
    fileBase: (member) => requireMember(member).name,
    commonName: (_plan, member) => requireMember(member).name,
    organization: () => SUBJECT_ORGANIZATION,
    subjectAltNames: (plan, member) => {
      const { ip, hostname, name } = requireMember(member);
      // DNS-member mode names the member by DNS only: its address is unknown when this is minted.
      const names: SubjectAltName[] = [
        ip !== undefined ? { type: 'ip', value: ip } : { type: 'dns', value: hostname ?? name },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: name },
        { type: 'dns', value: 'localhost' },
        // The cluster's stable client name (issue 29): a client that verifies against it reaches any member.
        ...(plan.clientEndpoint !== undefined ? [{ type: 'dns' as const, value: plan.clientEndpoint }] : []),
      ];
      return names.filter((san, index) => names.findIndex((other) => other.type === san.type && other.value === san.value) === index);
    },
    validityDays: (plan) => plan.certDays,
  },
  {
    id: 'admin',
    description: "Admin client certificate for the operator's etcdctl (CN root: the root user once etcd auth is enabled)",
    issuer: 'ca',
    scope: 'cluster',
    isCa: false,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extKeyUsage: ['clientAuth'],
    fileBase: () => 'admin',
    commonName: () => 'root',
    organization: () => SUBJECT_ORGANIZATION,
    subjectAltNames: () => [],
    validityDays: (plan) => plan.certDays,
  },
  {
    id: 'client',
    description: 'Named client certificate (--client, --kubernetes): CN is the name, for an application such as kube-apiserver; its key stays on the workstation until you copy it',
    issuer: 'ca',
    scope: 'client',
    isCa: false,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extKeyUsage: ['clientAuth'],
    // A folder of their own: no member name (a DNS label) can be `clients/<name>`.
    fileBase: (_member, client) => `clients/${requireClient(client).name}`,
    commonName: (_plan, _member, client) => requireClient(client).name,
    // kubeadm has issued kube-apiserver-etcd-client with no O since v1.29 (kubernetes#120521 dropped system:masters; etcd ignores O).
    organization: (client) => (requireClient(client).preset === 'kubernetes' ? undefined : SUBJECT_ORGANIZATION),
    subjectAltNames: () => [],
    validityDays: (plan) => plan.certDays,
  },
];

/** One certificate to have: a profile applied to the plan (and a member). */
export interface CertRequest {
  readonly profile: CertProfile;
  readonly fileBase: string;
  readonly member: MemberPlan | undefined;
  readonly client: ClientPlan | undefined;
  readonly commonName: string;
  readonly organization: string | undefined;
  readonly subjectAltNames: readonly SubjectAltName[];
  readonly validityDays: number;
}

export function certRequests(plan: ClusterPlan): CertRequest[] {
  return CERT_PROFILES.flatMap((profile): CertRequest[] => {
    if (profile.scope === 'client') {
      return plan.clients.map((client) => ({
        profile,
        member: undefined,
        client,
        fileBase: profile.fileBase(undefined, client),
        commonName: profile.commonName(plan, undefined, client),
        organization: profile.organization(client),
        subjectAltNames: profile.subjectAltNames(plan, undefined),
        validityDays: profile.validityDays(plan),
      }));
    }
    const targets = profile.scope === 'member' ? plan.members : [undefined];
    return targets.map((member) => ({
      profile,
      member,
      client: undefined,
      fileBase: profile.fileBase(member),
      commonName: profile.commonName(plan, member),
      organization: profile.organization(),
      subjectAltNames: profile.subjectAltNames(plan, member),
      validityDays: profile.validityDays(plan),
    }));
  });
}
