import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints where the time went (every file by duration, and with `perTest` every test of the slowest
 * files, which for the VM suites are the journey's phases), then one plain closing line,
 * `<suite>: N passed, N failed, N skipped`, that any CI log reader understands.
 */
export default class SummaryReporter implements Reporter {
  constructor(
    private readonly suite = 'tests',
    private readonly perTest = false,
  ) {}

  onTestRunEnd(testModules: readonly TestModule[]): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const testModule of testModules) {
      for (const testCase of testModule.children.allTests()) {
        const state = testCase.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      // A file that failed to load has no tests but is a failure.
      if (testModule.state() === 'failed' && [...testModule.children.allTests()].length === 0) counts.failed++;
    }
    process.stdout.write(`\n${renderTimeTable(this.suite, testModules, this.perTest)}`);
    process.stdout.write(`\n${this.suite}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}

/** Seconds per file, slowest first (setup and import included), and with `perTest` each test's seconds under its file. */
export function renderTimeTable(suite: string, testModules: readonly TestModule[], perTest: boolean): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(1).padStart(8);
  const rows = testModules
    .map((testModule) => {
      const diagnostic = testModule.diagnostic();
      return { testModule, ms: diagnostic.duration + diagnostic.collectDuration + diagnostic.setupDuration + diagnostic.prepareDuration };
    })
    .sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((sum, row) => sum + row.ms, 0);
  const lines = [`${suite}: where the time goes (seconds per file, slowest first; ${seconds(total).trim()} s in all, files in parallel overlap)`];
  for (const { testModule, ms } of rows) {
    lines.push(`${seconds(ms)}  ${testModule.relativeModuleId}`);
    if (!perTest) continue;
    for (const testCase of testModule.children.allTests()) {
      const duration = testCase.diagnostic()?.duration;
      if (duration !== undefined) lines.push(`${seconds(duration)}    ${testCase.name}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
