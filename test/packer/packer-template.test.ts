import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../../src/plan.js';
import { renderUnit } from '../../src/render.js';
import { DEFAULT_ETCD_VERSION, DEFAULT_RELEASE_URL } from '../../src/versions.js';
import { bakeCommand, bakeFiles, GUEST_UPLOAD_DIR } from '../support/bake.js';
import { runProgram } from '../support/run.js';

const PACKER_DIR = fileURLToPath(new URL('../../packer/', import.meta.url));
const TEMPLATE = `${PACKER_DIR}etcd.pkr.hcl`;
const UNIT_COPY = `${PACKER_DIR}files/etcd.service`;
const BAKE_SCRIPT = `${PACKER_DIR}bake-etcd.sh`;
// Long enough that packer's masking of sensitive values does not garble unrelated output.
const DUMMY_TOKEN = 'dummy-token-for-offline-validate';

/** Debian's packer 1.6.6 (apt package `packer`): bundles the DigitalOcean builder, needs no network to validate. */
function packer(args: string[], extraEnv: Record<string, string> = {}) {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', CHECKPOINT_DISABLE: '1', ...extraEnv };
  return runProgram('packer', args, { env, timeoutMs: 60_000 });
}

describe('packer/etcd.pkr.hcl', () => {
  it('validates offline with the packer on this machine', async () => {
    const result = await packer(['validate', '-var', `do_token=${DUMMY_TOKEN}`, TEMPLATE]);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('takes the token from DIGITALOCEAN_TOKEN or DIGITALOCEAN_ACCESS_TOKEN, and refuses to run without one', async () => {
    expect(await packer(['validate', TEMPLATE], { DIGITALOCEAN_TOKEN: DUMMY_TOKEN })).toMatchObject({ code: 0 });
    expect(await packer(['validate', TEMPLATE], { DIGITALOCEAN_ACCESS_TOKEN: DUMMY_TOKEN })).toMatchObject({ code: 0 });
    expect(await packer(['validate', TEMPLATE], { DIGITALOCEAN_TOKEN: '', DIGITALOCEAN_ACCESS_TOKEN: DUMMY_TOKEN })).toMatchObject({ code: 0 });
    const missing = await packer(['validate', TEMPLATE]);
    expect(missing.code).toBe(1);
    expect(missing.stdout + missing.stderr).toContain('api_token for auth must be specified');
  });

  it('bakes the default etcd version and release URL of gen-userdata', async () => {
    const inspect = await packer(['inspect', TEMPLATE]);
    expect(inspect.code).toBe(0);
    const defaults = Object.fromEntries([...inspect.stdout.matchAll(/^var\.(\w+): (.*)$/gm)].map(([, name, value]) => [name, value]));
    expect(defaults.etcd_version).toBe(JSON.stringify(DEFAULT_ETCD_VERSION));
    expect(defaults.release_url).toBe(JSON.stringify(DEFAULT_RELEASE_URL));
    expect(defaults.etcd_sha256).toBe('""');
    expect(defaults.base_image).toMatch(/^"ubuntu-\d\d-04-x64"$/);
  });

  it.each([
    ['etcd_version=v3.8.0', 'The etcd_version must be a supported etcd release'],
    ['etcd_version=3.6.14', 'The etcd_version must be a supported etcd release'],
    ['release_url=ftp://mirror/etcd', 'The release_url must be an http(s) URL'],
    ['release_url=http://mirror/$(reboot)', 'The release_url must be an http(s) URL'],
    ['etcd_sha256=ABC', 'The etcd_sha256 must be empty or 64 lowercase hex digits'],
  ])('rejects -var %s before any droplet exists', async (assignment, message) => {
    const result = await packer(['validate', '-var', `do_token=${DUMMY_TOKEN}`, '-var', assignment, TEMPLATE]);
    expect(result.code).toBe(1);
    expect(result.stdout + result.stderr).toContain(message);
  });

  it('uploads the install script from cloud-init/, not a copy of it', async () => {
    const template = await readFile(TEMPLATE, 'utf8');
    expect(template).toContain('source      = "${path.root}/../cloud-init/install-etcd.sh"');
    const packerFiles = await readdir(PACKER_DIR, { recursive: true });
    expect(packerFiles.filter((file) => file.endsWith('install-etcd.sh'))).toEqual([]);
  });

  it('runs the same bake command as the e2e image (test/support/bake.ts)', async () => {
    const template = await readFile(TEMPLATE, 'utf8');
    expect(/^\s*upload_dir\s*=\s*"([^"]+)"/m.exec(template)?.[1]).toBe(GUEST_UPLOAD_DIR);
    const inline = /"(sh \$\{local\.upload_dir\}\/bake-etcd\.sh [^"]*)"/.exec(template)?.[1];
    const packerCommand = inline!
      .replaceAll('${local.upload_dir}', GUEST_UPLOAD_DIR)
      .replace('${var.etcd_version}', 'VERSION')
      .replace('${var.release_url}', 'URL')
      .replace(' ${local.sha256_arg}', '');
    const e2eCommand = bakeCommand({ root: '', version: 'VERSION', tarball: '', sha256: '' })
      .join(' ')
      .replace(`file://${GUEST_UPLOAD_DIR}/mirror`, 'URL');
    expect(packerCommand).toBe(e2eCommand);
    // And the same uploads: guest path -> repository file.
    const uploads = [...template.matchAll(/source\s*=\s*"\$\{path\.root\}\/([^"]+)"\s*destination\s*=\s*"\$\{local\.upload_dir\}\/([^"]+)"/g)].map(
      ([, source, destination]) => [`${GUEST_UPLOAD_DIR}/${destination}`, resolve(PACKER_DIR, source!)],
    );
    const e2eUploads = Object.entries(bakeFiles({ root: '', version: 'VERSION', tarball: '', sha256: '' })).filter(([guestPath]) => !guestPath.includes('/mirror/'));
    expect(uploads).toHaveLength(3);
    expect(Object.fromEntries(uploads)).toEqual(Object.fromEntries(e2eUploads));
  });

  it('installs nftables into the image where the base image has no nft, before the bake and the seal', async () => {
    const template = await readFile(TEMPLATE, 'utf8');
    const inline = /"(command -v nft [^"]*)"/.exec(template)?.[1];
    expect(inline).toBeDefined();
    expect(template.indexOf(inline!)).toBeLessThan(template.indexOf('bake-etcd.sh --version'));
    expect(template.indexOf(inline!)).toBeLessThan(template.indexOf('cloud-init clean --logs'));

    // The provisioner's command as the build droplet's shell runs it, with a stand-in apt-get.
    const scratch = await mkdtemp(join(tmpdir(), 'packer-nft-'));
    try {
      const bin = join(scratch, 'bin');
      await mkdir(bin);
      await symlink('/bin/sh', join(bin, 'sh'));
      await writeFile(join(bin, 'apt-get'), `#!/bin/sh\necho "DEBIAN_FRONTEND=$DEBIAN_FRONTEND apt-get $*" >> ${scratch}/apt.log\n`, { mode: 0o755 });
      const provision = () => runProgram('/bin/sh', ['-c', inline!], { env: { PATH: bin } });
      expect(await provision()).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(await readFile(join(scratch, 'apt.log'), 'utf8')).toBe(
        [
          'DEBIAN_FRONTEND= apt-get -q -o DPkg::Lock::Timeout=300 update',
          'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends nftables',
          '',
        ].join('\n'),
      );
      // A base image with nft: nothing to install.
      await writeFile(join(bin, 'nft'), '#!/bin/sh\n', { mode: 0o755 });
      await rm(join(scratch, 'apt.log'));
      expect(await provision()).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(existsSync(join(scratch, 'apt.log'))).toBe(false);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('keeps the required_plugins block out of the template Debian packer reads', async () => {
    expect(await readFile(TEMPLATE, 'utf8')).not.toMatch(/^\s*packer\s*\{/m);
    expect(await readFile(`${PACKER_DIR}plugins.pkr.hcl`, 'utf8')).toMatch(/required_plugins \{\s+digitalocean = \{\s+source += "github.com\/digitalocean\/digitalocean"/);
  });
});

describe('what the image carries', () => {
  it('packer/files/etcd.service is the unit every member gets (UPDATE_GOLDEN=1 rewrites it)', async () => {
    const rendered = renderUnit(NODE_PATHS);
    if (process.env.UPDATE_GOLDEN === '1') await writeFile(UNIT_COPY, rendered);
    expect(await readFile(UNIT_COPY, 'utf8')).toBe(rendered);
  });

  it('bake-etcd.sh puts things where user-data and the unit expect them', async () => {
    const script = await readFile(BAKE_SCRIPT, 'utf8');
    const assigned = Object.fromEntries([...script.matchAll(/^(\w+)=(\/\S+|\w+)$/gm)].map(([, name, value]) => [name, value]));
    expect(assigned).toEqual({
      bin_dir: NODE_PATHS.binDir,
      install_script: NODE_PATHS.installScript,
      unit_file: NODE_PATHS.unitFile,
      pki_dir: NODE_PATHS.pkiDir,
      data_dir: NODE_PATHS.dataDir,
      user: NODE_PATHS.user,
    });
  });
});
