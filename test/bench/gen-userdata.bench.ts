/**
 * npm run bench: gen-userdata wall time for 3, 5 and 7 members at RSA 2048 and 4096, against the
 * same keys and certificates made by sequential openssl CLI calls. Target: <= 0.5x openssl at
 * 3 members / 4096 bits on a 2-core machine. RSA key generation time varies a lot from key to
 * key, so each cell is the median of several runs (BENCH_RUNS, default 3). Exits 1 when the
 * target is missed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { main } from '../../src/cli.js';

const MEMBER_COUNTS = [3, 5, 7];
const KEY_SIZES = [2048, 4096];
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function ips(count: number): string[] {
  return Array.from({ length: count }, (_unused, index) => `10.10.0.${11 + index}`);
}

async function timeGenUserdata(count: number, bits: number): Promise<number> {
  const cwd = mkdtempSync(join(tmpdir(), 'bench-ours-'));
  const silent = { write: () => true };
  try {
    const start = performance.now();
    const code = await main(['gen-userdata', '--ips', ips(count).join(','), '--key-size', String(bits), '--allow-even'], { env: {}, stdout: silent, stderr: silent, cwd });
    if (code !== 0) throw new Error(`gen-userdata exited ${code}`);
    return performance.now() - start;
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** CA, one serverAuth+clientAuth cert per member with the same SANs, and an admin clientAuth cert. */
function timeOpenssl(count: number, bits: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'bench-openssl-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const start = performance.now();
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', 'ca.key');
    openssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=etcd CA', '-days', '3650', '-out', 'ca.crt',
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature');
    const leaves = [
      ...ips(count).map((ip, index) => ({ name: `etcd${index + 1}`, eku: 'serverAuth,clientAuth', san: `IP:${ip},IP:127.0.0.1,DNS:etcd${index + 1},DNS:localhost` })),
      { name: 'admin', eku: 'clientAuth', san: '' },
    ];
    for (const leaf of leaves) {
      openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', `${leaf.name}.key`);
      openssl('req', '-new', '-key', `${leaf.name}.key`, '-subj', `/CN=${leaf.name}`, '-out', `${leaf.name}.csr`);
      const ext = [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage=${leaf.eku}`,
        ...(leaf.san ? [`subjectAltName=${leaf.san}`] : []),
      ].join('\n');
      writeFileSync(join(dir, `${leaf.name}.ext`), `${ext}\n`);
      openssl('x509', '-req', '-in', `${leaf.name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '825', '-extfile', `${leaf.name}.ext`, '-out', `${leaf.name}.crt`);
    }
    return performance.now() - start;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

console.log(`gen-userdata vs sequential openssl CLI: median of ${RUNS} runs, ${availableParallelism()} cores, ${process.version}`);
console.log('members  bits   ours (ms)  openssl (ms)  ratio');
let targetRatio: number | undefined;
for (const bits of KEY_SIZES) {
  for (const count of MEMBER_COUNTS) {
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      ours.push(await timeGenUserdata(count, bits));
      theirs.push(timeOpenssl(count, bits));
    }
    const ratio = median(ours) / median(theirs);
    if (count === 3 && bits === 4096) targetRatio = ratio;
    console.log(`${String(count).padStart(7)}  ${String(bits).padStart(4)}  ${median(ours).toFixed(0).padStart(10)}  ${median(theirs).toFixed(0).padStart(12)}  ${ratio.toFixed(2)}x`);
  }
}
console.log(`target: <= 0.50x at 3 members / 4096 bits: ${targetRatio!.toFixed(2)}x ${targetRatio! <= 0.5 ? 'MET' : 'MISSED'}`);
if (targetRatio! > 0.5) process.exitCode = 1;
