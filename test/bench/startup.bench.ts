/**
 * npm run bench: start-up of the whole CLI process, as a user runs it, for `--help`,
 * `gen-userdata --help` and `health --help`, beside bare `node -e 0` as the floor. Each case is the
 * median of several runs (BENCH_STARTUP_RUNS, default 7), the cases taking turns so that a busy
 * moment hits them all alike. Wall time is measured here around the child; peak memory is the
 * child's RSS high-water mark (ru_maxrss) as GNU time reports it (`/usr/bin/time -f %M`, Debian's
 * `time` package). Targets: each within 0.15 s of bare node and under 60 MiB. Exits 1 when missed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 7);
const GNU_TIME = '/usr/bin/time';
const CLI = fileURLToPath(new URL('../../bin/etcd-cloudinit.js', import.meta.url));
const MAX_OVER_NODE_MS = 150;
const MAX_PEAK_MIB = 60;

interface Case {
  readonly label: string;
  readonly args: readonly string[];
}

const FLOOR: Case = { label: 'node -e 0', args: ['-e', '0'] };
const CASES: Case[] = [
  FLOOR,
  { label: '--help', args: [CLI, '--help'] },
  { label: 'gen-userdata --help', args: [CLI, 'gen-userdata', '--help'] },
  { label: 'health --help', args: [CLI, 'health', '--help'] },
];

interface Sample {
  readonly wallMs: number;
  readonly peakKiB: number;
}

function measure(entry: Case, report: string): Sample {
  const start = performance.now();
  // -o: time's report goes to its own file, apart from anything the program prints.
  const child = spawnSync(GNU_TIME, ['-o', report, '-f', '%M', process.execPath, ...entry.args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wallMs = performance.now() - start;
  if (child.status !== 0) throw new Error(`${entry.label} exited ${child.status}: ${child.stderr}`);
  return { wallMs, peakKiB: Number(readFileSync(report, 'utf8').trim().split('\n').at(-1)) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

if (!existsSync(GNU_TIME)) {
  console.error(`${GNU_TIME} is missing: install Debian's time package (see .ci/install-deps)`);
  process.exit(1);
}
const scratch = mkdtempSync(join(tmpdir(), 'bench-startup-'));
const samples = new Map<Case, Sample[]>(CASES.map((entry) => [entry, []]));
try {
  const report = join(scratch, 'time.txt');
  for (const entry of CASES) measure(entry, report); // warm the file cache: every case starts from the same place
  for (let run = 0; run < RUNS; run++) for (const entry of CASES) samples.get(entry)!.push(measure(entry, report));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const wall = (entry: Case) => median(samples.get(entry)!.map((sample) => sample.wallMs));
const peakMiB = (entry: Case) => median(samples.get(entry)!.map((sample) => sample.peakKiB)) / 1024;
const floorMs = wall(FLOOR);
console.log(`start-up, whole process: median of ${RUNS} runs, ${availableParallelism()} cores, ${process.version}`);
console.log('command               wall (ms)  over node (ms)  peak RSS (MiB)');
let missed = 0;
for (const entry of CASES) {
  const over = wall(entry) - floorMs;
  const met = entry === FLOOR || (over <= MAX_OVER_NODE_MS && peakMiB(entry) < MAX_PEAK_MIB);
  if (!met) missed += 1;
  const overText = entry === FLOOR ? '-' : over.toFixed(0);
  console.log(`${entry.label.padEnd(20)}  ${wall(entry).toFixed(0).padStart(9)}  ${overText.padStart(14)}  ${peakMiB(entry).toFixed(1).padStart(14)}${met ? '' : '  MISSED'}`);
}
console.log(`target: within ${MAX_OVER_NODE_MS} ms of bare node and under ${MAX_PEAK_MIB} MiB peak: ${missed === 0 ? 'MET' : `MISSED (${missed})`}`);
if (missed > 0) process.exitCode = 1;
