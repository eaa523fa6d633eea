import { describe, expect, it } from 'vitest';
import { diagnoseConsole, readCloudInitVerdict, readSavedSnapshot } from './e2e/guest-console.js';

// The VM test's verdicts come from console text; lines below are copied from real guest consoles.

const LOCALE_FAILED =
  "[  331.594087] cloud-init[427]: 2026-11-22 01:52:06,209 - util.py[WARNING]: Running module locale (<module 'cloudinit.config.cc_locale' from '/usr/lib/python3/dist-packages/cloudinit/config/cc_locale.py'>) failed";

describe('readCloudInitVerdict', () => {
  it('is undefined until the report unit has printed', () => {
    expect(readCloudInitVerdict('[  12.0] systemd[1]: Started cloud-init.service\n')).toBeUndefined();
  });

  it('reads status, errors and failed modules', () => {
    const console = [
      LOCALE_FAILED,
      '[  575.776581] e2e-report-cloud-init[524]: E2E-CLOUD-INIT status: error',
      `[  587.735843] e2e-report-cloud-init[529]: E2E-CLOUD-INIT-RESULT {"v1": {"datasource": "DataSourceNoCloud", "errors": ["('locale', ProcessExecutionError())"]}}`,
    ].join('\n');
    expect(readCloudInitVerdict(console)).toEqual({
      status: 'error',
      errors: ["('locale', ProcessExecutionError())"],
      failedModules: ['locale'],
      schemaWarning: undefined,
    });
  });

  it('reads a clean run as done', () => {
    const console = 'x E2E-CLOUD-INIT status: done\ny E2E-CLOUD-INIT-RESULT {"v1": {"datasource": "NoCloud", "errors": []}}\n';
    expect(readCloudInitVerdict(console)).toEqual({ status: 'done', errors: [], failedModules: [], schemaWarning: undefined });
  });

  it('reports the schema warning cloud-init only logs', () => {
    const console = [
      "[  224.561953] cloud-init[376]: 2026-11-22 02:25:52,287 - schema.py[WARNING]: Invalid cloud-config provided: Please run 'sudo cloud-init schema --system' to see the schema errors.",
      'x E2E-CLOUD-INIT status: done',
      'y E2E-CLOUD-INIT-RESULT {"v1": {"datasource": "NoCloud", "errors": []}}',
    ].join('\n');
    expect(readCloudInitVerdict(console)?.schemaWarning).toMatch(/^Invalid cloud-config provided/);
  });
});

describe('diagnoseConsole', () => {
  it.each([
    [
      '[ 600.1] etcd[519]: rejected connection from "10.77.0.12:40012" (error "tls: failed to verify client certificate: x509: certificate specifies an incompatible key usage", ServerName "")',
      /clientAuth/,
      true,
    ],
    ['[ 600.2] etcd[519]: rejected connection from "10.77.0.12:40012" (error "remote error: tls: bad certificate", ServerName "")', /rejected a certificate/, true],
    [LOCALE_FAILED, /cloud-init module failed/, false],
    ['[ 400.0] cloud-init[463]: curl: (7) Failed to connect to 10.77.0.1 port 8080', /download/, false],
  ])('recognises %s', (line, meaning, fatal) => {
    const [finding] = diagnoseConsole(`[ 1.0] boot\n${line}\n`);
    expect(finding?.meaning).toMatch(meaning);
    expect(finding?.fatal).toBe(fatal);
    expect(finding?.evidence).toBe(line.trim());
  });

  it('finds nothing in a healthy console', () => {
    expect(diagnoseConsole('[ 500.0] etcd[516]: serving client requests on 10.77.0.11:2379\n')).toEqual([]);
  });
});

describe('readSavedSnapshot', () => {
  const saved =
    '[  912.341207] etcd-snapshot.sh[1873]: etcd-cloudinit: saved /var/backups/etcd/etcd-etcd2-20261122T052400Z.db; keeping the newest 24 snapshot(s) in /var/backups/etcd';

  it("finds the member's saved snapshot", () => {
    expect(readSavedSnapshot(`x\n${saved}\ny\n`, 'etcd2')).toBe('/var/backups/etcd/etcd-etcd2-20261122T052400Z.db');
  });

  it("ignores another member's snapshot and a failed save", () => {
    expect(readSavedSnapshot(saved, 'etcd1')).toBeUndefined();
    expect(readSavedSnapshot('[  700.1] etcd-snapshot.sh[901]: etcd-cloudinit: etcd-snapshot: snapshot save failed; keeping the existing snapshots', 'etcd2')).toBeUndefined();
  });
});

describe('diagnoseConsole: a unit whose sandbox cannot be set up', () => {
  // Copied from a real guest: etcd-snapshot.service before its folder came from tmpfiles.d.
  const line = '[  443.791761] (install)[493]: etcd-snapshot.service: Failed at step NAMESPACE spawning /usr/bin/install: No such file or directory';

  it('names the cause', () => {
    expect(diagnoseConsole(line)).toEqual([
      { meaning: "systemd could not set up a unit's sandbox (e.g. a ReadWritePaths= folder that does not exist)", evidence: line.trim(), fatal: false },
    ]);
  });
});
