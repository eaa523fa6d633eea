import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fallbackAccepts, isCalendarExpression, systemdAnalyzeAccepts } from '../src/systemd-calendar.js';

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** Expressions and whether systemd (252, Debian 12) takes them; the fallback parser must agree on each. */
const TABLE: [string, boolean][] = [
  ['hourly', true],
  ['HOURLY', true],
  ['minutely', true],
  ['daily', true],
  ['weekly', true],
  ['monthly', true],
  ['yearly', true],
  ['annually', true],
  ['quarterly', true],
  ['semi-annually', true],
  ['hourly UTC', true],
  ['hourly ', false],
  [' hourly', false],
  ['x', false],
  ['every-hour', false],
  ['*', false],
  ['10', false],
  ['Mon', true],
  ['Mon..Fri', true],
  ['Fri..Mon', false],
  ['Mon-Wed 10:00', true],
  ['Mon.. 10:00', false],
  ['Mon, 10:00', true],
  ['Mond 10:00', false],
  ['monday,sat 10:00', true],
  ['Mon..Fri *-*-* 10:00', true],
  ['Sat *-*-1..7 03:00 UTC', true],
  ['*-*-* 00/6:00:00', true],
  ['*:0/15', true],
  ['*:*:*', true],
  ['*/2:00', false],
  ['*-*', true],
  ['*-02~03', true],
  ['*-*~28', true],
  ['*-*~29', false],
  ['*-*~03/2', true],
  ['*-*~03/3', false],
  ['02~03~04', false],
  ['2001-01-01', true],
  ['1969-01-01', false],
  ['2199-12-31', true],
  ['2200-01-01', false],
  ['99-1-1', true],
  ['*-13-01', false],
  ['*-*-32', false],
  ['*-*-0', false],
  ['24:00', false],
  ['23:59:59', true],
  ['23:59:60', false],
  ['0:0:59.9999994', true],
  ['0:0:59.9999996', false],
  ['0:0:5.', false],
  ['0:0:5.25', true],
  ['5..5:00', true],
  ['5..4:00', false],
  ['0..2/3:00', true],
  ['0..23/24:00', true],
  ['22/2:00', false],
  ['22/1:00', true],
  ['23/1:00', false],
  ['1:5:5..5', false],
  ['1:5:5..5/1', true],
  ['1:5:5.5..6', false],
  ['1:5:5..6.5', true],
  ['1:5:*/5', false],
  ['1,2,:00', false],
  ['1,2,3:00', true],
  // A zone name counts only where the zone database has it (Debian's tzdata).
  ['10:00 Europe/Berlin', existsSync('/usr/share/zoneinfo/Europe/Berlin')],
  ['10:00 Nowhere/Zone', false],
  ['10:00 Europe//Berlin', false],
  ['UTC', false],
  [' UTC', false],
  ['10:00  UTC', false],
  ['Mon  10:00', true],
];

describe('systemd calendar expressions: the fallback parser agrees with systemd-analyze', () => {
  it.each(TABLE)('%j accepted: %s', (expression, accepted) => {
    expect(fallbackAccepts(expression)).toBe(accepted);
    if (hasSystemdAnalyze) expect(systemdAnalyzeAccepts(expression)).toBe(accepted);
    expect(isCalendarExpression(expression)).toBe(accepted);
  });

  it.skipIf(!hasSystemdAnalyze)('on generated expressions built from the grammar\'s pieces', () => {
    const value = fc.constantFrom('*', '0', '1', '5', '12', '23', '31', '59', '60', '0/15', '1..5', '5..1', '1..10/3', '00/6', '2,4', '3/0', '70', '2199', '2200', '5..5', '0..2/3', '5.5', '59.9999996', '1.');
    const expression = fc
      .tuple(
        fc.constantFrom('', 'Mon ', 'Mon..Fri ', 'Fri..Mon ', 'Sat,Sun ', 'mon,', 'Mon-Wed ', 'Monday ', 'Mond ', 'Mon.. '),
        fc.oneof(fc.constant(''), fc.tuple(value, value, value).map(([y, m, d]) => `${y}-${m}-${d} `), fc.tuple(value, value).map(([m, d]) => `${m}-${d} `), fc.tuple(value, value).map(([m, d]) => `${m}~${d} `)),
        fc.oneof(fc.constant(''), fc.tuple(value, value).map(([h, m]) => `${h}:${m}`), fc.tuple(value, value, value).map(([h, m, s]) => `${h}:${m}:${s}`)),
        fc.constantFrom('', ' UTC', ' utc', ' Europe/Berlin', ' Nowhere/Zone'),
      )
      .map((parts) => parts.join('').replace(/^ +/, ''));
    fc.assert(
      fc.property(expression, (text) => {
        expect(fallbackAccepts(text)).toBe(systemdAnalyzeAccepts(text));
      }),
      { numRuns: 400, seed: 15 },
    );
  }, 60_000);
});
