import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Schedule, ScheduleError, scheduleProblem, type ScheduleSpec, type ScheduleWindow } from '../../src/admission/schedule.js';

const at = (iso: string): Date => new Date(iso);

function schedule(timezone: string, ...windows: ScheduleWindow[]): Schedule {
  return new Schedule({ timezone, windows });
}

/** Asserts isOpen at each instant: `open` ones true, `closed` ones false. */
function assertOpen(subject: Schedule, open: string[], closed: string[]): void {
  for (const instant of open) assert.equal(subject.isOpen(at(instant)), true, `open at ${instant}`);
  for (const instant of closed) assert.equal(subject.isOpen(at(instant)), false, `closed at ${instant}`);
}

function assertClosesAt(subject: Schedule, instant: string, expected: string | undefined): void {
  assert.equal(subject.closesAt(at(instant))?.toISOString(), expected, `closesAt(${instant})`);
}

// 2024-03-04 is a Monday.
describe('Schedule', { timeout: 10_000 }, () => {
  it('opens inside weekday windows and closes outside them (UTC)', () => {
    const office = schedule('UTC', { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:30' });
    assertOpen(
      office,
      ['2024-03-04T08:00:00.000Z', '2024-03-04T18:29:59.999Z', '2024-03-08T12:00:00Z'],
      ['2024-03-04T07:59:59.999Z', '2024-03-04T18:30:00.000Z', '2024-03-09T12:00:00Z', '2024-03-10T09:00:00Z'],
    );
    assertClosesAt(office, '2024-03-04T10:00:00Z', '2024-03-04T18:30:00.000Z');
    assertClosesAt(office, '2024-03-04T19:00:00Z', undefined);
  });

  it('crosses midnight when to is earlier than from, by the day the window opens', () => {
    const late = schedule('UTC', { days: ['fri'], from: '22:00', to: '02:00' });
    assertOpen(
      late,
      ['2024-03-08T22:00:00Z', '2024-03-08T23:59:59Z', '2024-03-09T00:00:00Z', '2024-03-09T01:59:59Z'],
      ['2024-03-08T21:59:59Z', '2024-03-09T02:00:00Z', '2024-03-07T23:00:00Z', '2024-03-09T23:00:00Z', '2024-03-08T01:00:00Z'],
    );
    assertClosesAt(late, '2024-03-08T23:00:00Z', '2024-03-09T02:00:00.000Z');
  });

  it('wraps from Saturday night into Sunday morning', () => {
    const weekend = schedule('UTC', { days: ['sat'], from: '23:00', to: '01:00' });
    assertOpen(weekend, ['2024-03-09T23:30:00Z', '2024-03-10T00:30:00Z'], ['2024-03-10T01:00:00Z', '2024-03-10T23:30:00Z']);
    assertClosesAt(weekend, '2024-03-09T23:30:00Z', '2024-03-10T01:00:00.000Z');
  });

  it('treats "24:00" and "00:00" as the end of the day', () => {
    const evening = schedule('UTC', { days: ['mon'], from: '18:00', to: '24:00' }, { days: ['tue'], from: '18:00', to: '00:00' });
    assertOpen(evening, ['2024-03-04T23:59:59Z', '2024-03-05T23:59:59Z'], ['2024-03-05T00:00:00Z', '2024-03-06T00:00:00Z']);
    assertClosesAt(evening, '2024-03-04T20:00:00Z', '2024-03-05T00:00:00.000Z');
  });

  it('merges adjacent and overlapping windows for closesAt', () => {
    const split = schedule(
      'UTC',
      { days: ['mon'], from: '08:00', to: '12:00' },
      { days: ['mon'], from: '12:00', to: '18:00' },
      { days: ['mon'], from: '20:00', to: '24:00' },
      { days: ['mon'], from: '23:00', to: '06:00' },
      { days: ['tue'], from: '05:00', to: '07:00' },
    );
    assertClosesAt(split, '2024-03-04T09:00:00Z', '2024-03-04T18:00:00.000Z');
    assertClosesAt(split, '2024-03-04T21:00:00Z', '2024-03-05T07:00:00.000Z');
    assert.equal(split.isOpen(at('2024-03-04T19:00:00Z')), false);
  });

  it('never closes when the windows cover the whole week', () => {
    const always = schedule('Europe/Berlin', { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '24:00' });
    assert.equal(always.isOpen(at('2024-03-31T01:30:00Z')), true);
    assertClosesAt(always, '2024-03-31T00:30:00Z', undefined);
  });

  it('uses local time and weekday in a non-UTC zone without DST (Asia/Kolkata, +05:30)', () => {
    const kolkata = schedule('Asia/Kolkata', { days: ['mon'], from: '09:00', to: '17:00' }, { days: ['fri'], from: '22:00', to: '02:00' });
    assertOpen(
      kolkata,
      ['2024-03-04T03:30:00Z', '2024-03-04T11:29:59Z', '2024-03-08T16:30:00Z', '2024-03-08T20:29:59Z'],
      ['2024-03-04T03:29:59Z', '2024-03-04T11:30:00Z', '2024-03-08T16:29:59Z', '2024-03-08T20:30:00Z'],
    );
    assertClosesAt(kolkata, '2024-03-04T05:00:00Z', '2024-03-04T11:30:00.000Z');
    // Across local midnight: Friday 22:00 IST to Saturday 02:00 IST.
    assertClosesAt(kolkata, '2024-03-08T17:00:00Z', '2024-03-08T20:30:00.000Z');
  });

  it('takes the weekday from the zone, not from UTC (America/New_York)', () => {
    // 2024-03-04T03:00Z is Monday in UTC but Sunday 22:00 in New York (EST, -05:00).
    const sundayNight = schedule('America/New_York', { days: ['sun'], from: '21:00', to: '23:00' });
    assertOpen(sundayNight, ['2024-03-04T03:00:00Z'], ['2024-03-04T04:00:00Z', '2024-03-03T03:00:00Z']);
  });

  it('follows the spring DST change (Europe/Berlin, 2024-03-31 02:00 CET -> 03:00 CEST)', () => {
    const morning = schedule('Europe/Berlin', { days: ['sun'], from: '09:00', to: '10:00' });
    // A week before, 09:00 CET is 08:00Z; on the change day, 09:00 CEST is 07:00Z.
    assertOpen(morning, ['2024-03-24T08:00:00Z', '2024-03-31T07:00:00Z'], ['2024-03-24T07:00:00Z', '2024-03-31T06:59:59Z', '2024-03-31T08:00:00Z']);
    assertClosesAt(morning, '2024-03-31T07:10:00Z', '2024-03-31T08:00:00.000Z');

    // A window ending inside the skipped hour closes at the jump.
    const night = schedule('Europe/Berlin', { days: ['sun'], from: '01:00', to: '02:30' });
    assertOpen(night, ['2024-03-31T00:30:00Z', '2024-03-31T00:59:59Z'], ['2024-03-31T01:00:00Z']);
    assertClosesAt(night, '2024-03-31T00:30:00Z', '2024-03-31T01:00:00.000Z');

    // A closed gap that falls inside the skipped hour never happens: open straight through.
    const gapped = schedule('Europe/Berlin', { days: ['sun'], from: '00:00', to: '02:30' }, { days: ['sun'], from: '02:45', to: '05:00' });
    assertClosesAt(gapped, '2024-03-31T00:30:00Z', '2024-03-31T03:00:00.000Z');
  });

  it('follows the autumn DST change (Europe/Berlin, 2024-10-27 03:00 CEST -> 02:00 CET)', () => {
    // The clock goes back to 02:00, before the window's 02:15 start: closed for 15 minutes.
    const early = schedule('Europe/Berlin', { days: ['sun'], from: '02:15', to: '04:00' });
    assertOpen(early, ['2024-10-27T00:30:00Z', '2024-10-27T01:15:00Z'], ['2024-10-27T00:14:59Z', '2024-10-27T01:00:00Z', '2024-10-27T01:14:59Z']);
    assertClosesAt(early, '2024-10-27T00:30:00Z', '2024-10-27T01:00:00.000Z');
    assertClosesAt(early, '2024-10-27T01:15:00Z', '2024-10-27T03:00:00.000Z');

    // A window ending at 02:30 ends at the first 02:30 and, by wall clock, reopens in the repeated hour.
    const late = schedule('Europe/Berlin', { days: ['sat'], from: '22:00', to: '02:30' });
    assertOpen(late, ['2024-10-27T00:10:00Z', '2024-10-27T01:10:00Z'], ['2024-10-27T00:30:00Z', '2024-10-27T01:30:00Z']);
    assertClosesAt(late, '2024-10-27T00:10:00Z', '2024-10-27T00:30:00.000Z');
    assertClosesAt(late, '2024-10-27T01:10:00Z', '2024-10-27T01:30:00.000Z');
  });

  it('finds the end after a DST change that falls inside the window (America/New_York, 2024-03-10)', () => {
    const overnight = schedule('America/New_York', { days: ['sat'], from: '23:00', to: '04:00' });
    // 00:00 EST is 05:00Z; the clocks jump at 07:00Z; 04:00 EDT is 08:00Z.
    assertClosesAt(overnight, '2024-03-10T05:00:00Z', '2024-03-10T08:00:00.000Z');
  });

  it('names the problem in a spec, and the constructor throws it', () => {
    const valid: ScheduleSpec = { timezone: 'UTC', windows: [{ days: ['mon'], from: '08:00', to: '17:00' }] };
    assert.equal(scheduleProblem(valid), undefined);
    const window = valid.windows[0]!;
    const cases: [ScheduleSpec, RegExp][] = [
      [{ ...valid, timezone: 'Mars/Olympus_Mons' }, /^timezone: unknown IANA time zone "Mars\/Olympus_Mons"$/],
      [{ ...valid, windows: [] }, /^windows: at least one window/],
      [{ ...valid, windows: [{ ...window, days: [] }] }, /^windows\[0\]\.days: at least one day/],
      [{ ...valid, windows: [window, { ...window, days: ['mon', 'monday' as 'mon'] }] }, /^windows\[1\]\.days\[1\]: expected one of mon, .*got "monday"$/],
      [{ ...valid, windows: [{ ...window, from: '8:00' }] }, /^windows\[0\]\.from: expected HH:MM from 00:00 to 23:59, got "8:00"$/],
      [{ ...valid, windows: [{ ...window, from: '24:00' }] }, /^windows\[0\]\.from: /],
      [{ ...valid, windows: [{ ...window, from: '12:60' }] }, /^windows\[0\]\.from: /],
      [{ ...valid, windows: [{ ...window, to: '24:01' }] }, /^windows\[0\]\.to: expected HH:MM from 00:00 to 24:00, got "24:01"$/],
      [{ ...valid, windows: [{ ...window, to: '25:00' }] }, /^windows\[0\]\.to: /],
      [{ ...valid, windows: [{ ...window, from: '08:00', to: '08:00' }] }, /^windows\[0\]: from "08:00" and to "08:00" make an empty window/],
    ];
    for (const [spec, problem] of cases) {
      assert.match(scheduleProblem(spec) ?? 'no problem', problem);
      assert.throws(
        () => new Schedule(spec),
        (error: unknown) => error instanceof ScheduleError && problem.test(error.message),
      );
    }
  });
});
