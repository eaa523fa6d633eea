/**
 * Every day-2 command on every way of making a cluster: members by IP, members by DNS name
 * (--domain), and droplets made by create-droplets against the fake DigitalOcean API. Each cell
 * runs the built CLI as a user would and checks a running cluster of real etcd members on loopback.
 */
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { folderSnapshot } from '../support/cli.js';
import { ETCD_BIN, ETCDCTL_BIN } from '../support/local-cluster.js';
import { DO_POLL_ARGS, LOOP_DOMAIN, LoopbackCluster, type ClusterKind } from '../support/loopback-cluster.js';

const canRun = process.getuid?.() === 0 && existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);

const BOOTSTRAP = ['etcd1', 'etcd2', 'etcd3'];
const TAG = 'etcd-cluster-etcd';

interface ClusterRecord {
  formatVersion?: number;
  domain?: string;
  members: { name: string; ip?: string; hostname?: string }[];
}

interface DigitalOceanState {
  members: { name: string; dropletId?: number }[];
}

/** What differs between the kinds: how members are addressed and added, and what the cloud must show. */
interface Kind {
  readonly kind: ClusterKind;
  /** The `domain` cluster.json records. */
  readonly domain: string | undefined;
  /** The address fields cluster.json gives member etcd<n>. */
  readonly address: (cluster: LoopbackCluster, n: number) => { ip?: string; hostname?: string };
  readonly addArgs: (cluster: LoopbackCluster) => string[];
  readonly checkAdded: (cluster: LoopbackCluster) => void;
  /** Called before remove-member; returns the check for after it. */
  readonly beforeRemove: (cluster: LoopbackCluster) => () => void;
}

const json = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
const aRecords = (cluster: LoopbackCluster, name: string) => (cluster.fake!.domains.get(LOOP_DOMAIN) ?? []).filter((record) => record.type === 'A' && record.name === name);

const KINDS: readonly Kind[] = [
  {
    kind: 'ip',
    domain: undefined,
    address: (cluster, n) => ({ ip: cluster.ip(n) }),
    addArgs: (cluster) => ['add-member', '--ip', cluster.ip(4)],
    checkAdded: () => {},
    beforeRemove: () => () => {},
  },
  {
    kind: 'dns',
    domain: LOOP_DOMAIN,
    address: (_cluster, n) => ({ hostname: `etcd-etcd${n}.${LOOP_DOMAIN}` }),
    addArgs: () => ['add-member', '--name', 'etcd4'],
    checkAdded: () => {},
    beforeRemove: () => () => {},
  },
  {
    kind: 'do',
    domain: LOOP_DOMAIN,
    address: (_cluster, n) => ({ hostname: `etcd-etcd${n}.${LOOP_DOMAIN}` }),
    addArgs: () => ['add-member', ...DO_POLL_ARGS],
    checkAdded: (cluster) => {
      const droplet = cluster.droplet('etcd4');
      const first = cluster.droplet('etcd1')!;
      expect(droplet, 'droplet etcd-etcd4').toBeDefined();
      expect(droplet).toMatchObject({ region: first.region, size: first.size, image: first.image, vpcUuid: first.vpcUuid });
      expect(droplet!.tags).toContain(TAG);
      // The droplet boots from exactly what add-member wrote.
      expect(droplet!.userData).toBe(readFileSync(cluster.userDataPath('etcd4'), 'utf8'));
      expect(aRecords(cluster, 'etcd-etcd4').map((record) => record.data)).toEqual([droplet!.privateIpv4]);
      const state = json<DigitalOceanState>(join(cluster.outDir, 'digitalocean.json'));
      expect(state.members.find((member) => member.name === 'etcd4')?.dropletId).toBe(droplet!.id);
    },
    beforeRemove: (cluster) => {
      const dropletId = cluster.droplet('etcd4')?.id;
      const recordId = aRecords(cluster, 'etcd-etcd4')[0]?.id;
      return () => {
        expect(cluster.droplet('etcd4')).toBeUndefined();
        expect(aRecords(cluster, 'etcd-etcd4')).toEqual([]);
        expect(cluster.fake!.mutations()).toContain(`DELETE /v2/droplets/${dropletId}`);
        expect(cluster.fake!.mutations()).toContain(`DELETE /v2/domains/${LOOP_DOMAIN}/records/${recordId}`);
        const state = json<DigitalOceanState>(join(cluster.outDir, 'digitalocean.json'));
        expect(state.members.map((member) => member.name)).not.toContain('etcd4');
      };
    },
  },
];

describe.runIf(canRun)('day-2 matrix on real etcd members', () => {
  describe.each(KINDS)('$kind cluster', ({ kind, domain, address, addArgs, checkAdded, beforeRemove }) => {
    let cluster: LoopbackCluster;

    beforeAll(async () => {
      cluster = await LoopbackCluster.create(kind);
      await cluster.startAll(BOOTSTRAP);
      const health = await cluster.etcdctl(['endpoint', 'health', '--cluster']);
      expect(health.code, health.stderr).toBe(0);
      const put = await cluster.etcdctl(['put', '/matrix/before', 'kept']);
      expect(put.code, put.stderr).toBe(0);
    });

    afterAll(async () => {
      await cluster?.cleanup();
    });

    const record = () => json<ClusterRecord>(join(cluster.outDir, 'cluster.json'));

    /** [name, learner] of every member etcd lists (asked of the bootstrap members: a learner serves few requests). */
    const memberList = async () => {
      const list = await cluster.etcdctl(['member', 'list', '-w', 'json'], BOOTSTRAP.map((name) => cluster.clientUrl(name)));
      expect(list.code, list.stderr).toBe(0);
      return (JSON.parse(list.stdout) as { members: { name?: string; isLearner?: boolean }[] }).members
        .map((member): [string, boolean] => [member.name ?? '', member.isLearner === true])
        .sort(([a], [b]) => a.localeCompare(b));
    };

    // Every request create-droplets and the day-2 commands sent is valid against DigitalOcean's OpenAPI description.
    const expectValidApiRequests = () => expect(cluster.fake?.violations ?? []).toEqual([]);

    it('cluster.json records formatVersion 1, how members are addressed, and the domain', () => {
      const { formatVersion, domain: recordedDomain, members } = record();
      expect(formatVersion).toBe(1);
      expect(recordedDomain).toBe(domain);
      expect(members.map(({ name, ip, hostname }) => ({ name, ip, hostname }))).toEqual(BOOTSTRAP.map((name, index) => ({ name, ...address(cluster, index + 1) })));
    });

    it('health: all members healthy; a stopped member fails it by name', async () => {
      const result = await cluster.cli(['health', '--json']);
      expect(result.code, result.stderr || result.stdout).toBe(0);
      const report = JSON.parse(result.stdout) as { members: { name: string; healthy: boolean }[]; clientEndpoint: { name: string; matches: boolean; addresses: string[] } | null };
      expect(report.members.map(({ name, healthy }) => [name, healthy])).toEqual(BOOTSTRAP.map((name) => [name, true]));
      // Issue 29: the stable client name. Only a cluster with a domain has one by default; create-droplets keeps its
      // records (the names resolve as the fake API's A records say), a --domain cluster's are the user's to make.
      if (kind === 'ip') expect(report.clientEndpoint).toBeNull();
      if (kind === 'dns') {
        expect(report.clientEndpoint).toMatchObject({ name: `etcd.${LOOP_DOMAIN}`, matches: false, addresses: [] });
        expect(result.stderr).toContain(`warning: client endpoint etcd.${LOOP_DOMAIN} does not resolve here (ENOTFOUND): create an A record per voting member`);
      }
      if (kind === 'do') {
        expect(report.clientEndpoint).toMatchObject({ name: `etcd.${LOOP_DOMAIN}`, matches: true, addresses: BOOTSTRAP.map((name) => cluster.memberIp(name)).sort() });
        const text = await cluster.cli(['health']);
        expect(text.stdout).toContain(`Client endpoint etcd.${LOOP_DOMAIN}: resolves to exactly the 3 voting member(s).`);
      }
      if (kind !== 'ip') {
        // Every member's certificate carries the stable name: a client verifying TLS against it reaches each one.
        const pki = (file: string) => readFileSync(join(cluster.outDir, 'pki', file), 'utf8');
        for (const name of BOOTSTRAP) {
          const verified = await new Promise<string>((resolve, reject) => {
            const socket = connect({ host: cluster.memberIp(name), port: 2379, servername: `etcd.${LOOP_DOMAIN}`, ca: pki('ca.crt'), cert: pki('admin.crt'), key: pki('admin.key') }, () => {
              resolve(socket.authorized ? 'authorized' : String(socket.authorizationError));
              socket.end();
            });
            socket.on('error', reject);
          });
          expect(verified, name).toBe('authorized');
        }
      }

      await cluster.stop('etcd3');
      try {
        const down = await cluster.cli(['health', '--timeout', '2']);
        expect(down.code, down.stderr).toBe(1);
        expect(down.stdout).toContain(`member etcd3 (${cluster.clientUrl('etcd3')}) did not answer: ECONNREFUSED`);
        // Where its boot shows: the droplet's console on a cluster create-droplets made, the machine's otherwise.
        const dropletId = kind === 'do' ? json<DigitalOceanState>(join(cluster.outDir, 'digitalocean.json')).members.find((member) => member.name === 'etcd3')?.dropletId : undefined;
        expect(down.stdout).toContain(kind === 'do' ? `  etcd3: the Droplet Console of droplet etcd-etcd3 (id ${dropletId})` : "  etcd3: the console of etcd3's machine");
      } finally {
        await cluster.start('etcd3');
        await cluster.waitHealthy(['etcd3']);
      }
      expectValidApiRequests();
    });

    it('--dry-run of add-member, remove-member and renew-certs: each says what it would do and changes nothing', async () => {
      const folder = folderSnapshot(cluster.outDir);
      const members = await memberList();
      const mutations = cluster.fake?.mutations().length;
      const added = await cluster.cli([...addArgs(cluster), '--dry-run']);
      expect(added.code, added.stderr).toBe(0);
      expect(added.stdout).toMatch(/^Dry run: would add member etcd4 \(.+\) as a learner to cluster etcd; nothing was changed or written\.$/m);
      expect(added.stderr).toContain('[dry-run] etcd https://');
      const removed = await cluster.cli(['remove-member', '--name', 'etcd3', '--dry-run']);
      expect(removed.code, removed.stderr).toBe(0);
      expect(removed.stdout).toBe('Dry run: would remove member etcd3 from cluster etcd; nothing was changed or written.\n');
      const renewed = await cluster.cli(['renew-certs', '--dry-run']);
      expect(renewed.code, renewed.stderr).toBe(0);
      expect(renewed.stdout).toBe(
        'Dry run: would renew 3 member certificate(s) in place and the admin certificate of cluster etcd (members: a new key each, made on the member; admin and clients: keys kept; 825 days); nothing was written.\n',
      );
      expect(renewed.stderr).toMatch(/^\[dry-run\] write out\/etcd\/pki\/etcd1\.crt, /m);
      expect(renewed.stderr).toMatch(/^\[dry-run\] delete out\/etcd\/pki\/etcd1\.key, /m);
      expect(folderSnapshot(cluster.outDir)).toEqual(folder);
      expect(await memberList()).toEqual(members);
      expect(cluster.fake?.mutations().length).toBe(mutations);
    });

    it('add-member: a 4th member boots from its user-data as a learner, is promoted, and has the data', async () => {
      const result = await cluster.cli(addArgs(cluster));
      expect(result.code, result.stderr).toBe(0);
      checkAdded(cluster);
      expect(record().members.map((member) => member.name)).toEqual([...BOOTSTRAP, 'etcd4']);
      expect(record().members[3]).toMatchObject({ name: 'etcd4', ...address(cluster, 4) });

      await cluster.boot('etcd4');
      await cluster.waitHealthy(['etcd4']);
      expect(await memberList()).toEqual([...BOOTSTRAP.map((name): [string, boolean] => [name, false]), ['etcd4', true]]);
      await cluster.promote('etcd4');
      expect(await memberList()).toEqual([...BOOTSTRAP, 'etcd4'].map((name) => [name, false]));
      const fromNew = await cluster.etcdctl(['get', '/matrix/before', '--print-value-only'], [cluster.clientUrl('etcd4')]);
      expect(fromNew.stdout.trim(), fromNew.stderr).toBe('kept');
      expectValidApiRequests();
    });

    it('remove-member: back to 3 members, and etcd4 is gone from the folder', async () => {
      const checkRemoved = beforeRemove(cluster);
      const result = await cluster.cli(['remove-member', '--name', 'etcd4', '--yes']);
      expect(result.code, result.stderr).toBe(0);
      await cluster.stop('etcd4');

      expect(await memberList()).toEqual(BOOTSTRAP.map((name) => [name, false]));
      expect(record().members.map((member) => member.name)).toEqual(BOOTSTRAP);
      for (const file of ['pki/etcd4.crt', 'pki/etcd4.key', 'user-data/etcd4.yaml']) expect(existsSync(join(cluster.outDir, file)), file).toBe(false);
      checkRemoved();
      expectValidApiRequests();
    });

    it('renew-certs: each member serves its renewed certificate once installed; health stays green', async () => {
      const before = new Map<string, string>();
      for (const name of BOOTSTRAP) before.set(name, await cluster.servedSerial(name));
      const result = await cluster.cli(['renew-certs', '--via-ssh-script']);
      expect(result.code, result.stderr).toBe(0);

      for (const name of BOOTSTRAP) {
        await cluster.installRenewal(name);
        const renewed = new X509Certificate(readFileSync(cluster.pkiFile(`${name}.crt`))).serialNumber;
        expect(renewed, name).not.toBe(before.get(name));
        expect(await cluster.servedSerial(name), name).toBe(renewed);
      }
      const health = await cluster.cli(['health']);
      expect(health.code, health.stdout).toBe(0);
      expectValidApiRequests();
    });
  });
});
