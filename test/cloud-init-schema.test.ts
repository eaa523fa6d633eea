import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from './support/cli.js';
import { FIXTURES } from './support/golden.js';

const execFileAsync = promisify(execFile);

/** The real cloud-init (Debian's package) validates offline against its own schema. */
async function cloudInitSchema(file: string): Promise<{ ok: boolean; output: string }> {
  return execFileAsync('cloud-init', ['schema', '--config-file', file]).then(
    ({ stdout, stderr }) => ({ ok: true, output: stdout + stderr }),
    (error: { stdout?: string; stderr?: string }) => ({ ok: false, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
}

describe('cloud-init schema accepts every rendered user-data', () => {
  const workDir = tempDir('schema');
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  const goldenFiles = readdirSync(FIXTURES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(FIXTURES, entry.name, 'want')))
    .flatMap((entry) => readdirSync(join(FIXTURES, entry.name, 'want')).map((file) => join(FIXTURES, entry.name, 'want', file)));

  it.each(goldenFiles)('golden %s', async (file) => {
    const result = await cloudInitSchema(file);
    expect(result.output).toContain('Valid cloud-config');
    expect(result.ok).toBe(true);
  });

  it.each(['v3.4.23', 'v3.5.21', 'v3.6.14', 'v3.7.1'])('fresh output for etcd %s', async (version) => {
    const run = await runCli(['gen-userdata', '--ips', '10.0.0.1,10.0.0.2,10.0.0.3', '--key-size', '2048', '--etcd-version', version, '--cluster-name', version.replace(/\./g, '-')], workDir);
    expect(run.code, run.stderr).toBe(0);
    const dir = join(workDir, 'out', version.replace(/\./g, '-'), 'user-data');
    for (const file of readdirSync(dir)) {
      const result = await cloudInitSchema(join(dir, file));
      expect(result.output, file).toContain('Valid cloud-config');
    }
  });

  it('can fail: a cloud-config with a misspelt module key is rejected', async () => {
    const { writeFileSync } = await import('node:fs');
    const bad = join(workDir, 'bad.yaml');
    writeFileSync(bad, '#cloud-config\nwrite_files:\n  - path: /tmp/x\n    permissions: 600\n    contnt: hi\n');
    const result = await cloudInitSchema(bad);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/write_files/);
  });
});
