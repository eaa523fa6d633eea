/**
 * add-member and remove-member on a cluster create-droplets made, beyond the happy path of the
 * matrix: --dry-run changes nothing anywhere, and a failure part-way leaves a state that a re-run
 * completes, with every droplet recorded in digitalocean.json and never a second one.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_BIN, ETCDCTL_BIN } from '../support/local-cluster.js';
import { DO_POLL_ARGS, LOOP_DOMAIN, LoopbackCluster } from '../support/loopback-cluster.js';

const canRun = process.getuid?.() === 0 && existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);
const BOOTSTRAP = ['etcd1', 'etcd2', 'etcd3'];

interface DropletState {
  members: { name: string; dropletName: string; dropletId?: number; privateIpv4?: string }[];
}

describe.runIf(canRun)('DigitalOcean day-2: dry runs and resumes', () => {
  let cluster: LoopbackCluster;

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('do');
    await cluster.startAll(BOOTSTRAP);
  });
  afterAll(async () => {
    await cluster?.cleanup();
  });

  const fake = () => cluster.fake!;
  const digest = (file: string) => createHash('sha256').update(readFileSync(join(cluster.outDir, file))).digest('hex');
  const state = () => JSON.parse(readFileSync(join(cluster.outDir, 'digitalocean.json'), 'utf8')) as DropletState;
  const records = (name: string) => (fake().domains.get(LOOP_DOMAIN) ?? []).filter((record) => record.type === 'A' && record.name === name);
  const droplets = (name: string) => [...fake().droplets.values()].filter((droplet) => droplet.name === name);
  const memberNames = async () => {
    const list = await cluster.etcdctl(['member', 'list', '-w', 'json'], BOOTSTRAP.map((name) => cluster.clientUrl(name)));
    expect(list.code, list.stderr).toBe(0);
    return (JSON.parse(list.stdout) as { members: { name?: string; peerURLs: string[] }[] }).members.map((member) => member.name || member.peerURLs.join()).sort();
  };
  const folderDigests = () => ['cluster.json', 'digitalocean.json', 'etcdctl.env'].map(digest);

  it('add-member --dry-run prints the etcd, file and API changes and makes none', async () => {
    const before = { mutations: fake().mutations().length, folder: folderDigests(), members: await memberNames() };
    const result = await cluster.cli(['add-member', '--dry-run', ...DO_POLL_ARGS]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`Dry run: would add member etcd4 (etcd-etcd4.${LOOP_DOMAIN}) as a learner to cluster etcd; nothing was changed or written.\n`);
    const planned = result.stderr.split('\n').filter((line) => line.startsWith('[dry-run] '));
    expect(planned[0]).toMatch(new RegExp(`^\\[dry-run\\] etcd https://\\S+:2379: member add https://etcd-etcd4\\.${LOOP_DOMAIN}:2380 as a learner$`));
    expect(planned[1]).toBe('[dry-run] write out/etcd/pki/etcd4.crt, out/etcd/pki/etcd4.key, out/etcd/user-data/etcd4.yaml, out/etcd/cluster.json, out/etcd/etcdctl.env');
    expect(planned.slice(2).map((line) => line.split(' ').slice(1, 3).join(' '))).toEqual([
      'POST /v2/droplets',
      `write out/etcd/digitalocean.json`,
      `POST /v2/domains/${LOOP_DOMAIN}/records`,
      `write out/etcd/digitalocean.json`,
    ]);
    // The droplet's body names the user-data file; no private key is printed.
    expect(planned[2]).toContain('"user_data":"<out/etcd/user-data/etcd4.yaml>"');
    expect(result.stderr).not.toContain('PRIVATE KEY');
    expect(fake().mutations().length).toBe(before.mutations);
    expect(folderDigests()).toEqual(before.folder);
    expect(existsSync(cluster.pkiFile('etcd4.key'))).toBe(false);
    expect(await memberNames()).toEqual(before.members);
    expect(fake().violations).toEqual([]);
  });

  it('add-member that fails at the A record leaves the droplet recorded; a re-run finishes it without a second droplet', async () => {
    fake().fail({ method: 'POST', path: `/v2/domains/${LOOP_DOMAIN}/records`, status: 500, times: 1 });
    const failed = await cluster.cli(['add-member', ...DO_POLL_ARGS]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('[api] ');
    expect(failed.stderr).toContain('re-run add-member --name etcd4 to finish its droplet');
    const [droplet] = droplets('etcd-etcd4');
    expect(droplets('etcd-etcd4')).toHaveLength(1);
    // Recorded as soon as it existed; no address yet, which marks it unfinished.
    expect(state().members.find((member) => member.name === 'etcd4')).toEqual({ name: 'etcd4', dropletName: 'etcd-etcd4', hostname: `etcd-etcd4.${LOOP_DOMAIN}`, dropletId: droplet!.id });
    expect(records('etcd-etcd4')).toEqual([]);

    // Another member may not be started meanwhile.
    const other = await cluster.cli(['add-member', '--name', 'etcd5', ...DO_POLL_ARGS]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('[preflight] member etcd4 was added but its droplet is not finished; run add-member --name etcd4 to finish it');

    const resumed = await cluster.cli(['add-member', ...DO_POLL_ARGS]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('etcd4: add-member did not finish its droplet; resuming it');
    expect(resumed.stdout).toContain(`Finished adding member etcd4 (etcd-etcd4.${LOOP_DOMAIN})`);
    expect(droplets('etcd-etcd4').map((d) => d.id)).toEqual([droplet!.id]);
    expect(records('etcd-etcd4').map((record) => record.data)).toEqual([droplet!.privateIpv4]);
    expect(state().members.find((member) => member.name === 'etcd4')).toMatchObject({ dropletId: droplet!.id, privateIpv4: droplet!.privateIpv4 });
    expect(droplet!.userData).toBe(readFileSync(cluster.userDataPath('etcd4'), 'utf8'));
    expect(fake().violations).toEqual([]);
  });

  it('remove-member --dry-run changes nothing', async () => {
    const before = { mutations: fake().mutations().length, folder: folderDigests(), members: await memberNames() };
    const result = await cluster.cli(['remove-member', '--name', 'etcd4', '--dry-run']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('Dry run: would remove member etcd4 from cluster etcd; nothing was changed or written.\n');
    const planned = result.stderr.split('\n').filter((line) => line.startsWith('[dry-run] ')).map((line) => line.split(' ').slice(1, 3).join(' '));
    expect(planned).toEqual([
      expect.stringMatching(/^etcd https:/),
      `DELETE /v2/domains/${LOOP_DOMAIN}/records/${records('etcd-etcd4')[0]!.id}`,
      `DELETE /v2/droplets/${droplets('etcd-etcd4')[0]!.id}`,
      'write out/etcd/digitalocean.json',
      'write out/etcd/cluster.json,',
      'delete out/etcd/pki/etcd4.crt,',
    ]);
    expect(fake().mutations().length).toBe(before.mutations);
    expect(folderDigests()).toEqual(before.folder);
    expect(await memberNames()).toEqual(before.members);
  });

  it('remove-member that fails at the droplet finishes on a re-run', async () => {
    const dropletId = droplets('etcd-etcd4')[0]!.id;
    fake().fail({ method: 'DELETE', path: `/v2/droplets/${dropletId}`, status: 500, times: 1 });
    const failed = await cluster.cli(['remove-member', '--name', 'etcd4', '--yes']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('Re-run remove-member --member etcd4 to finish');
    // etcd no longer has it, its name no longer resolves, the droplet is still recorded.
    expect(await memberNames()).toEqual(BOOTSTRAP);
    expect(records('etcd-etcd4')).toEqual([]);
    expect(droplets('etcd-etcd4')).toHaveLength(1);
    expect(state().members.map((member) => member.name)).toContain('etcd4');

    const resumed = await cluster.cli(['remove-member', '--name', 'etcd4', '--yes']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`Member etcd4 (etcd-etcd4.${LOOP_DOMAIN}) was no longer in cluster etcd; removed it from the folder: now 3 members.`);
    expect(resumed.stdout).toContain(`DigitalOcean: deleted droplet id ${dropletId} and 0 A record(s)`);
    expect(droplets('etcd-etcd4')).toEqual([]);
    expect(state().members.map((member) => member.name)).toEqual(BOOTSTRAP);
    expect(existsSync(cluster.pkiFile('etcd4.crt'))).toBe(false);
    expect(fake().violations).toEqual([]);
    const health = await cluster.cli(['health']);
    expect(health.code, health.stdout).toBe(0);
  });
});
