// Reads a guest's serial console: cloud-init's verdict and known failure signatures, so a red run says why.

export interface CloudInitVerdict {
  // "done", "error", ... from `cloud-init status --long`, printed by the guest image's report unit
  status: string;
  errors: string[];
  failedModules: string[];
  // cloud-init validates the merged config and only warns; the generated user-data must not trip it.
  schemaWarning: string | undefined;
}

export function readCloudInitVerdict(consoleText: string): CloudInitVerdict | undefined {
  const status = /E2E-CLOUD-INIT status: (\S+)/.exec(consoleText)?.[1];
  const resultJson = /E2E-CLOUD-INIT-RESULT (\{.*\})/.exec(consoleText)?.[1];
  if (status === undefined || resultJson === undefined) return undefined;
  const result = JSON.parse(resultJson) as { v1?: { errors?: string[] } };
  const failedModules = [...consoleText.matchAll(/Running module (\S+) \(.*\) failed/g)].map((match) => match[1] ?? '');
  const schemaWarning = /Invalid cloud-config provided.*/.exec(consoleText)?.[0];
  return { status, errors: result.v1?.errors ?? [], failedModules: [...new Set(failedModules)], schemaWarning };
}

/** The snapshot file a member's etcd-snapshot.service reported saving (journald forwards it to the console). */
export function readSavedSnapshot(consoleText: string, memberName: string): string | undefined {
  return new RegExp(`etcd-cloudinit: saved (\\S+/etcd-${memberName}-\\d{8}T\\d{6}Z\\.db); keeping the newest \\d+ snapshot`).exec(consoleText)?.[1];
}

interface FailureSignature {
  pattern: RegExp;
  meaning: string;
  // Fatal ones can never heal by waiting: the health wait gives up early on them.
  fatal: boolean;
}

const FAILURE_SIGNATURES: FailureSignature[] = [
  {
    pattern: /incompatible key usage/,
    meaning: 'a certificate lacks a needed extended key usage (member certs need clientAuth too: peers present them as client certs)',
    fatal: true,
  },
  { pattern: /tls: bad certificate/, meaning: "a TLS peer rejected a certificate (e.g. no IP SAN for the member's address)", fatal: true },
  { pattern: /certificate signed by unknown authority/, meaning: 'a certificate is not signed by the cluster CA', fatal: true },
  { pattern: /Running module \S+ \(.*\) failed/, meaning: 'a cloud-init module failed', fatal: false },
  { pattern: /Invalid cloud-config provided/, meaning: 'cloud-init found the merged cloud-config invalid against its schema', fatal: false },
  { pattern: /sha256sum: WARNING|: FAILED$/m, meaning: 'the etcd release failed its checksum', fatal: true },
  // The product's install script prefixes its errors so; runcmd runs once, so etcd never gets installed.
  { pattern: /etcd-cloudinit: install-etcd: /, meaning: 'the etcd install script failed', fatal: true },
  { pattern: /curl: \(\d+\)/, meaning: 'a download with curl failed', fatal: false },
  { pattern: /Unknown user or group/, meaning: 'a write_files entry names a user that does not exist yet', fatal: false },
  { pattern: /couldn't find local name/, meaning: "the member's name is missing from initial-cluster", fatal: true },
  { pattern: /expected IP in URL for binding/, meaning: 'a listen URL is not an IP address', fatal: true },
  { pattern: /etcd\.service: (Failed with result|start operation timed out)/, meaning: 'etcd.service failed', fatal: false },
  { pattern: /Failed at step NAMESPACE/, meaning: "systemd could not set up a unit's sandbox (e.g. a ReadWritePaths= folder that does not exist)", fatal: false },
];

export interface ConsoleFinding {
  meaning: string;
  evidence: string;
  fatal: boolean;
}

export function diagnoseConsole(consoleText: string): ConsoleFinding[] {
  const lines = consoleText.split(/\r?\n/);
  const findings: ConsoleFinding[] = [];
  for (const signature of FAILURE_SIGNATURES) {
    const line = lines.find((candidate) => signature.pattern.test(candidate));
    if (line !== undefined) findings.push({ meaning: signature.meaning, evidence: line.trim().slice(0, 300), fatal: signature.fatal });
  }
  return findings;
}
