/**
 * The `access.schedule` rule: connections are accepted only inside weekly windows of
 * local time in an IANA time zone.
 *
 * - A window `{ days, from, to }` opens on each listed day at `from` and closes at `to`
 *   (exclusive). `to` earlier than `from` crosses midnight: `fri 22:00-02:00` covers
 *   Friday 22:00 to Saturday 02:00. `to: "24:00"` (or `"00:00"`) means the end of the day.
 * - Windows are wall-clock times, so they follow DST: on the spring-forward day a window
 *   ending at 02:30 closes at the jump (03:00 local), and in the repeated autumn hour a
 *   time inside a window is open both times it occurs.
 * - Overlapping and adjacent windows form one open period (closesAt gives its end).
 * - The schedule gates new connections only; whether an established connection is cut
 *   when its window ends is the caller's choice (closesAt gives the instant).
 */
import { ZonedClock } from './zoned-clock.js';
import { TcpProxyError } from '../errors/errors.js';

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

export interface ScheduleWindow {
  days: readonly Weekday[];
  /** HH:MM, 00:00-23:59 */
  from: string;
  /** HH:MM, 00:00-24:00; earlier than `from` crosses midnight */
  to: string;
}

export interface ScheduleSpec {
  /** IANA name, e.g. "Europe/Berlin", or "UTC" */
  timezone: string;
  windows: readonly ScheduleWindow[];
}

/** A schedule spec that cannot be used; the message names the field, e.g. `windows[1].to: ...`. */
export class ScheduleError extends TcpProxyError {
  constructor(message: string) {
    super('config_invalid', message);
  }
}

/** Index = day of week as Date#getUTCDay counts it (Sunday = 0). */
const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MINUTES_PER_DAY = 24 * 60;
const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;
const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = MINUTES_PER_DAY * MS_PER_MINUTE;
/** 1970-01-01, day 0 of the epoch, was a Thursday. */
const EPOCH_WEEKDAY = 4;
const HH_MM = /^(\d\d):(\d\d)$/;

export class Schedule {
  readonly #clock: ZonedClock;
  /** One flag per minute of the week (Sunday 00:00 = 0): 1 inside a window. */
  readonly #openMinutes = new Uint8Array(MINUTES_PER_WEEK);

  /** Throws ScheduleError naming an unknown time zone, a bad day or a bad HH:MM. */
  constructor(spec: ScheduleSpec) {
    const read = readSpec(spec);
    if ('problem' in read) throw new ScheduleError(read.problem);
    this.#clock = read.clock;
    for (const { days, from, length } of read.windows) {
      for (const day of days) {
        const start = day * MINUTES_PER_DAY + from;
        // Modulo wraps a window crossing Saturday midnight into Sunday morning.
        for (let minute = 0; minute < length; minute++) this.#openMinutes[(start + minute) % MINUTES_PER_WEEK] = 1;
      }
    }
  }

  isOpen(at: Date): boolean {
    return this.#isOpenAt(at.getTime());
  }

  /**
   * When the open period containing `at` ends: the first later instant at which
   * isOpen turns false. Undefined when closed at `at`, or when the windows cover the
   * whole week (it never closes).
   */
  closesAt(at: Date): Date | undefined {
    let instant = at.getTime();
    if (!this.#isOpenAt(instant)) return undefined;
    // Each pass either finds the end under the current UTC offset or moves to the next
    // offset change (at most a couple per week), so the loop ends.
    for (;;) {
      const wall = this.#clock.wallMs(instant);
      const openMinutes = this.#openMinutesFrom(minuteOfWeek(wall));
      if (openMinutes === MINUTES_PER_WEEK) return undefined;
      const offset = wall - instant;
      const wallEnd = Math.floor(wall / MS_PER_MINUTE) * MS_PER_MINUTE + openMinutes * MS_PER_MINUTE;
      const end = wallEnd - offset;
      if (this.#clock.offsetMs(end) === offset) return new Date(end);
      // The offset changes first (DST): the wall clock jumps, which may skip the end
      // (spring) or return to an earlier, possibly closed, time (autumn).
      const change = this.#clock.offsetChangeBetween(instant, end);
      if (!this.#isOpenAt(change)) return new Date(change);
      instant = change;
    }
  }

  #isOpenAt(epochMs: number): boolean {
    return this.#openMinutes[minuteOfWeek(this.#clock.wallMs(epochMs))] === 1;
  }

  /** Consecutive open minutes starting at `minute`; MINUTES_PER_WEEK when always open. */
  #openMinutesFrom(minute: number): number {
    let count = 0;
    while (count < MINUTES_PER_WEEK && this.#openMinutes[(minute + count) % MINUTES_PER_WEEK] === 1) count++;
    return count;
  }
}

/** Why `spec` cannot be used, naming the field (`windows[0].from: ...`), or undefined. */
export function scheduleProblem(spec: ScheduleSpec): string | undefined {
  const read = readSpec(spec);
  return 'problem' in read ? read.problem : undefined;
}

/** A window in minutes: opens `from` minutes after midnight on each of `days` (Sunday = 0). */
interface WindowMinutes {
  days: number[];
  from: number;
  length: number;
}

function readSpec(spec: ScheduleSpec): { clock: ZonedClock; windows: WindowMinutes[] } | { problem: string } {
  let clock: ZonedClock;
  try {
    clock = new ZonedClock(spec.timezone);
  } catch {
    return { problem: `timezone: unknown IANA time zone ${JSON.stringify(spec.timezone)}` };
  }
  if (spec.windows.length === 0) return { problem: 'windows: at least one window is required' };
  const windows: WindowMinutes[] = [];
  for (const [index, window] of spec.windows.entries()) {
    const path = `windows[${index}]`;
    if (window.days.length === 0) return { problem: `${path}.days: at least one day is required` };
    const days: number[] = [];
    for (const [dayIndex, day] of window.days.entries()) {
      const weekday = WEEKDAYS.indexOf(day);
      if (weekday < 0) {
        return { problem: `${path}.days[${dayIndex}]: expected one of mon, tue, wed, thu, fri, sat, sun, got ${JSON.stringify(day)}` };
      }
      days.push(weekday);
    }
    const from = parseHhMm(window.from, 23);
    if (from === undefined) return { problem: `${path}.from: expected HH:MM from 00:00 to 23:59, got ${JSON.stringify(window.from)}` };
    const to = parseHhMm(window.to, 24);
    if (to === undefined) return { problem: `${path}.to: expected HH:MM from 00:00 to 24:00, got ${JSON.stringify(window.to)}` };
    if (from === to) {
      return {
        problem: `${path}: from ${JSON.stringify(window.from)} and to ${JSON.stringify(window.to)} make an empty window (a whole day is from "00:00" to "24:00")`,
      };
    }
    windows.push({ days, from, length: to > from ? to - from : to + MINUTES_PER_DAY - from });
  }
  return { clock, windows };
}

/** Minutes since midnight, or undefined; `maxHour` 24 admits exactly "24:00". */
function parseHhMm(text: string, maxHour: 23 | 24): number | undefined {
  const match = HH_MM.exec(text);
  if (match === null) return undefined;
  const hours = Number(match[1]);
  const minutes = Number(match[2]);
  if (minutes > 59 || hours > maxHour || (hours === 24 && minutes !== 0)) return undefined;
  return hours * 60 + minutes;
}

function minuteOfWeek(wallMs: number): number {
  const days = Math.floor(wallMs / MS_PER_DAY);
  const weekday = (((days + EPOCH_WEEKDAY) % 7) + 7) % 7;
  return weekday * MINUTES_PER_DAY + Math.floor((wallMs - days * MS_PER_DAY) / MS_PER_MINUTE);
}
