import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';

/**
 * systemd calendar expressions (OnCalendar=, systemd.time(7)): checked by `systemd-analyze calendar`
 * when this machine has it, else by `fallbackAccepts`, a parser of the same grammar that a test
 * compares with systemd-analyze. Both read expressions with TZ=UTC, so the workstation's own zone
 * does not change the verdict.
 */

/** Whether systemd takes `expression` as a calendar expression (OnCalendar=). */
export function isCalendarExpression(expression: string): boolean {
  // The shorthands (the default hourly among them) need no second opinion.
  if (Object.hasOwn(SHORTHANDS, expression.toLowerCase())) return true;
  let accepted = verdicts.get(expression);
  if (accepted === undefined) {
    accepted = systemdAnalyzeAccepts(expression) ?? fallbackAccepts(expression);
    verdicts.set(expression, accepted);
  }
  return accepted;
}

const verdicts = new Map<string, boolean>();

/** systemd-analyze's verdict; undefined when it is not installed or gave none. */
export function systemdAnalyzeAccepts(expression: string): boolean | undefined {
  const run = spawnSync('systemd-analyze', ['calendar', expression], {
    encoding: 'utf8',
    timeout: 10_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TZ: 'UTC', LC_ALL: 'C', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: 'cat' },
  });
  if (run.error || run.status === null) return undefined;
  if (run.status === 0) return true;
  return run.stderr.includes('Failed to parse calendar specification') ? false : undefined;
}

interface Component {
  start: number;
  stop: number;
  repeat: number;
}

interface Spec {
  year?: Component[];
  month?: Component[];
  day?: Component[];
  hour?: Component[];
  minute?: Component[];
  /** Seconds in microseconds. */
  second?: Component[];
  endOfMonth: boolean;
}

const USEC = 1_000_000;
const INT_MAX = 2 ** 31 - 1;

class Invalid extends Error {}

const SHORTHANDS: Record<string, Partial<Record<keyof Spec, number[]>>> = {
  minutely: { second: [0] },
  hourly: { minute: [0], second: [0] },
  daily: { hour: [0], minute: [0], second: [0] },
  weekly: { hour: [0], minute: [0], second: [0] },
  monthly: { day: [1], hour: [0], minute: [0], second: [0] },
  yearly: { month: [1], day: [1], hour: [0], minute: [0], second: [0] },
  annually: { month: [1], day: [1], hour: [0], minute: [0], second: [0] },
  anually: { month: [1], day: [1], hour: [0], minute: [0], second: [0] },
  quarterly: { month: [1, 4, 7, 10], day: [1], hour: [0], minute: [0], second: [0] },
  semiannually: { month: [1, 7], day: [1], hour: [0], minute: [0], second: [0] },
  'semi-annually': { month: [1, 7], day: [1], hour: [0], minute: [0], second: [0] },
  biannually: { month: [1, 7], day: [1], hour: [0], minute: [0], second: [0] },
  'bi-annually': { month: [1, 7], day: [1], hour: [0], minute: [0], second: [0] },
};

/** Longer names first: "Monday" must not be read as "Mon" followed by "day". */
const WEEKDAYS = ['monday', 'mon', 'tuesday', 'tue', 'wednesday', 'wed', 'thursday', 'thu', 'friday', 'fri', 'saturday', 'sat', 'sunday', 'sun'];

/**
 * The fallback for machines without systemd-analyze: the grammar of systemd.time(7) as systemd 252
 * parses it, over the characters the schema lets through (no `@` timestamps). Time zone names are
 * looked up in `zoneinfo`, as systemd does.
 */
export function fallbackAccepts(expression: string, zoneinfo = '/usr/share/zoneinfo'): boolean {
  try {
    parseCalendar(expression, zoneinfo);
    return true;
  } catch (error) {
    if (error instanceof Invalid) return false;
    throw error;
  }
}

function parseCalendar(expression: string, zoneinfo: string): void {
  let text = expression;
  if (/ utc$/i.test(text)) {
    text = text.slice(0, -4);
  } else {
    const lastSpace = text.lastIndexOf(' ');
    if (lastSpace >= 0 && isTimeZone(text.slice(lastSpace + 1), zoneinfo)) text = text.slice(0, lastSpace);
  }
  if (text === '') throw new Invalid();
  const spec: Spec = { endOfMonth: false };
  const shorthand = SHORTHANDS[text.toLowerCase()];
  if (shorthand) {
    for (const [field, values] of Object.entries(shorthand)) {
      spec[field as 'year'] = values.map((value) => ({ start: field === 'second' ? value * USEC : value, stop: -1, repeat: 0 }));
    }
  } else {
    const cursor = { text, at: 0 };
    parseWeekdays(cursor);
    parseDate(cursor, spec);
    parseTime(cursor, spec);
    if (cursor.at !== text.length) throw new Invalid();
  }
  checkRanges(spec);
}

/** A name systemd takes as a time zone: a file of the zone database. */
function isTimeZone(name: string, zoneinfo: string): boolean {
  if (name === 'UTC') return true;
  if (!/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(name)) return false;
  const path = `${zoneinfo}/${name}`;
  try {
    if (!statSync(path).isFile()) return false;
    const fd = openSync(path, 'r');
    try {
      const magic = Buffer.alloc(4);
      return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === 'TZif';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

interface Cursor {
  readonly text: string;
  at: number;
}

const peek = (cursor: Cursor, offset = 0): string => cursor.text[cursor.at + offset] ?? '';

function skipSpaces(cursor: Cursor): void {
  while (peek(cursor) === ' ') cursor.at++;
}

/** `Mon..Fri,Sun ` (ranges with `..` or `-`, lists with `,`); nothing when the expression starts otherwise. */
function parseWeekdays(cursor: Cursor): void {
  let rangeFrom: number | undefined;
  let first = true;
  for (;;) {
    const rest = cursor.text.slice(cursor.at).toLowerCase();
    const name = WEEKDAYS.find((candidate) => rest.startsWith(candidate));
    if (name === undefined) {
      if (first) return;
      throw new Invalid();
    }
    if (!['', '-', '.', ',', ' '].includes(cursor.text[cursor.at + name.length] ?? '')) throw new Invalid();
    const day = Math.floor(WEEKDAYS.indexOf(name) / 2);
    if (rangeFrom !== undefined && rangeFrom > day) throw new Invalid();
    cursor.at += name.length;
    const next = peek(cursor);
    if (next === '') return;
    if (next === ' ') {
      skipSpaces(cursor);
      return;
    }
    if (next === '.' || next === '-') {
      if (rangeFrom !== undefined || (next === '.' && peek(cursor, 1) !== '.')) throw new Invalid();
      rangeFrom = day;
      cursor.at += next === '.' ? 2 : 1;
    } else {
      rangeFrom = undefined;
      cursor.at += 1;
    }
    // A trailing comma is allowed, an open range is not.
    if (peek(cursor) === '' || peek(cursor) === ' ') {
      if (rangeFrom !== undefined) throw new Invalid();
      skipSpaces(cursor);
      return;
    }
    first = false;
  }
}

/** A date (`[year-]month-day`, `~` counting days from the month's end), if the text starts with one rather than a time. */
function parseDate(cursor: Cursor, spec: Spec): void {
  if (peek(cursor) === '') return;
  const probe = { ...cursor };
  const first = parseChain(probe, false);
  if (peek(probe) === '' || peek(probe) === ':') return;
  const separator = (): void => {
    if (peek(probe) === '~') spec.endOfMonth = true;
    else if (peek(probe) !== '-') throw new Invalid();
    probe.at++;
  };
  separator();
  const second = parseChain(probe, false);
  if (peek(probe) === '' || peek(probe) === ' ') {
    assign(spec, 'month', first);
    assign(spec, 'day', second);
  } else {
    if (spec.endOfMonth) throw new Invalid();
    separator();
    const third = parseChain(probe, false);
    if (peek(probe) !== '' && peek(probe) !== ' ') throw new Invalid();
    assign(spec, 'year', first);
    assign(spec, 'month', second);
    assign(spec, 'day', third);
  }
  skipSpaces(probe);
  cursor.at = probe.at;
}

function assign(spec: Spec, field: 'year' | 'month' | 'day', chain: Component[] | undefined): void {
  if (chain !== undefined) spec[field] = chain;
}

/** `hour:minute[:second]`; nothing at all means 00:00:00. */
function parseTime(cursor: Cursor, spec: Spec): void {
  if (peek(cursor) === '') {
    spec.hour = [{ start: 0, stop: -1, repeat: 0 }];
    spec.minute = [{ start: 0, stop: -1, repeat: 0 }];
    spec.second = [{ start: 0, stop: -1, repeat: 0 }];
    return;
  }
  spec.hour = parseChain(cursor, false);
  if (peek(cursor) !== ':') throw new Invalid();
  cursor.at++;
  spec.minute = parseChain(cursor, false);
  if (peek(cursor) === '') {
    spec.second = [{ start: 0, stop: -1, repeat: 0 }];
    return;
  }
  if (peek(cursor) !== ':') throw new Invalid();
  cursor.at++;
  spec.second = parseChain(cursor, true);
  if (peek(cursor) !== '') throw new Invalid();
}

/** `*`, or a comma list of `value[..stop][/repeat]`; undefined stands for `*` (any). */
function parseChain(cursor: Cursor, seconds: boolean): Component[] | undefined {
  if (peek(cursor) === '*') {
    cursor.at++;
    return seconds ? [{ start: 0, stop: -1, repeat: USEC }] : undefined;
  }
  const chain: Component[] = [];
  for (;;) {
    const start = parseNumber(cursor, seconds);
    let stop = -1;
    let repeat = 0;
    if (peek(cursor) === '.' && peek(cursor, 1) === '.') {
      cursor.at += 2;
      stop = parseNumber(cursor, seconds);
      repeat = seconds ? USEC : 1;
    }
    if (peek(cursor) === '/') {
      cursor.at++;
      repeat = parseNumber(cursor, seconds);
      if (repeat === 0) throw new Invalid();
    } else if (seconds && stop >= 0 && start + repeat > stop) {
      // A range of seconds steps by whole seconds unless told otherwise: it must hold one step.
      throw new Invalid();
    }
    if (!['', ' ', ',', '-', '~', ':'].includes(peek(cursor))) throw new Invalid();
    chain.push({ start, stop, repeat });
    if (chain.length > 240) throw new Invalid();
    if (peek(cursor) !== ',') return chain;
    cursor.at++;
  }
}

/** Decimal digits; for seconds, in microseconds with an optional fraction (`.` but not `..`). */
function parseNumber(cursor: Cursor, seconds: boolean): number {
  const digits = /^[0-9]+/.exec(cursor.text.slice(cursor.at))?.[0];
  if (digits === undefined) throw new Invalid();
  cursor.at += digits.length;
  let value = Number(digits);
  if (seconds) {
    value *= USEC;
    if (peek(cursor) === '.' && peek(cursor, 1) !== '.') {
      cursor.at++;
      const fraction = /^[0-9]*/.exec(cursor.text.slice(cursor.at))![0];
      if (fraction === '') throw new Invalid();
      cursor.at += fraction.length;
      // Six digits count; the seventh rounds.
      value += Number(fraction.slice(0, 6).padEnd(6, '0')) + (fraction[6] !== undefined && fraction[6] >= '5' ? 1 : 0);
    }
  }
  if (value > INT_MAX) throw new Invalid();
  return value;
}

/** Each component within its field's range, and every repetition able to happen at least once. */
function checkRanges(spec: Spec): void {
  const years = spec.year?.map((component) => ({ ...component, start: fullYear(component.start), stop: fullYear(component.stop) }));
  checkChain(years, 1970, 2199, false);
  checkChain(spec.month, 1, 12, false);
  checkChain(spec.day, 1, 31, spec.endOfMonth);
  checkChain(spec.hour, 0, 23, false);
  checkChain(spec.minute, 0, 59, false);
  checkChain(spec.second, 0, 60 * USEC - 1, false);
}

/** Two-digit years: 12 is 2012, 89 is 1989. */
function fullYear(year: number): number {
  if (year >= 0 && year < 70) return year + 2000;
  if (year >= 70 && year < 100) return year + 1900;
  return year;
}

function checkChain(chain: Component[] | undefined, from: number, to: number, endOfMonth: boolean): void {
  // Counted from the month's end, a day may be at most 28 back.
  const last = endOfMonth ? to - 3 : to;
  for (const component of chain ?? []) {
    const { start } = component;
    let { stop, repeat } = component;
    // A range ends at its last repetition; one that ends where it starts is a single value.
    if (stop > start && repeat > 0) stop -= (stop - start) % repeat;
    if (stop === start) [stop, repeat] = [-1, 0];
    if (start < from || start > last || repeat > last - from) throw new Invalid();
    if (stop >= 0) {
      if (stop < from || stop > last || start + repeat > stop) throw new Invalid();
    } else if (endOfMonth ? start - repeat < from : start + repeat > last) {
      throw new Invalid();
    }
  }
}
