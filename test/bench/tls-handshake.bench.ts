/**
 * npm run bench: full TLS handshakes per second against one real etcd member (/usr/bin/etcd) on
 * loopback, for a cluster of each key type (RSA-4096, the default; ECDSA P-256; ECDSA P-384). Each
 * connection presents the admin client certificate, as every etcd client must, gets
 * `GET /version` answered (so the server has finished its side, client certificate checked),
 * and is closed. No session is resumed: Node's tls.connect only resumes when given a session.
 * CONNECTIONS handshakes are in flight at a time, for SECONDS each. Besides the rate seen by the
 * client (which shares the machine's cores with etcd), the etcd process's own CPU time per
 * handshake is read from /proc: that is what a member pays for each new client connection.
 */
import { readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect } from 'node:tls';
import { main } from '../../src/cli.js';
import { tempDir } from '../support/cli.js';
import { adminTls, loopbackBlock, startLocalCluster } from '../support/local-cluster.js';

const SECONDS = Number(process.env.BENCH_TLS_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_TLS_CONNECTIONS ?? 4);
const CASES = [
  { label: 'RSA-4096', flags: ['--key-type', 'rsa', '--key-size', '4096'] },
  { label: 'ECDSA P-256', flags: ['--key-type', 'ecdsa-p256'] },
  { label: 'ECDSA P-384', flags: ['--key-type', 'ecdsa-p384'] },
];
const CLOCK_TICKS = 100; // USER_HZ on Linux: /proc/<pid>/stat counts CPU time in 1/100 s.

interface Result {
  readonly label: string;
  readonly handshakes: number;
  readonly seconds: number;
  readonly serverCpuSeconds: number;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** One connection: full handshake with the client certificate, GET /version answered, closed. */
function handshake(host: string, tls: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: 2379, ...tls, ALPNProtocols: ['http/1.1'] });
    let answer = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.on('secureConnect', () => socket.write(`GET /version HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('etcdserver')) {
        socket.destroy();
        if (!answer.startsWith('HTTP/1.1 200')) reject(new Error(`unexpected answer: ${answer.split('\r\n')[0]}`));
        else resolve();
      }
    });
    socket.on('error', reject);
  });
}

async function measure(label: string, flags: readonly string[]): Promise<Result> {
  const workDir = tempDir('bench-tls');
  const [ip] = loopbackBlock(1);
  const silent = { write: () => true };
  const code = await main(['gen-userdata', '--ips', ip!, '--etcd-version', 'v3.4.23', ...flags], { env: {}, stdout: silent, stderr: silent, cwd: workDir });
  if (code !== 0) throw new Error(`gen-userdata ${flags.join(' ')} exited ${code}`);
  const clusterDir = join(workDir, 'out', 'etcd');
  const cluster = await startLocalCluster(clusterDir, join(workDir, 'nodes'), ['etcd1'], [`https://${ip}:2379`]);
  try {
    const files = adminTls(join(clusterDir, 'pki'));
    const tls = { ca: readFileSync(files.cacert), cert: readFileSync(files.cert), key: readFileSync(files.key) };
    // Warm up: the first handshakes load code paths on both sides.
    for (let index = 0; index < 3; index += 1) await handshake(ip!, tls);
    const pid = cluster.members[0]!.process!.pid!;
    const cpuBefore = cpuSeconds(pid);
    const start = performance.now();
    const end = start + SECONDS * 1000;
    let handshakes = 0;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < end) {
          await handshake(ip!, tls);
          handshakes += 1;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    return { label, handshakes, seconds, serverCpuSeconds: cpuSeconds(pid) - cpuBefore };
  } finally {
    await cluster.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
for (const { label, flags } of CASES) results.push(await measure(label, flags));

const rows = results.map((result) => [
  result.label,
  (result.handshakes / result.seconds).toFixed(0),
  ((result.serverCpuSeconds * 1000) / result.handshakes).toFixed(2),
  (result.handshakes / result.serverCpuSeconds).toFixed(0),
]);
const header = ['keys', 'handshakes/s', 'etcd CPU ms/handshake', 'handshakes per etcd CPU-second'];
const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
const line = (cells: readonly string[]) => `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join(' | ')} |`;
console.log(`TLS handshakes (client certificate, no resumption, GET /version) against one etcd member on loopback; ${CONNECTIONS} in flight, ${SECONDS} s each; ${availableParallelism()} CPUs, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)} at the end`);
console.log(line(header));
console.log(`|${widths.map((width, column) => (column === 0 ? `${'-'.repeat(width + 1)}-` : `${'-'.repeat(width + 1)}:`)).join('|')}|`);
for (const row of rows) console.log(line(row));
