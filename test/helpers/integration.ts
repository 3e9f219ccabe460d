/**
 * Helpers for the end-to-end tests of balancing and admission: "whoami" upstreams that
 * name themselves, refusal checks, log counting, and schedule windows around now.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { LogLine, TestProxy } from './proxy.js';
import { startServer, type TestServer } from './servers.js';
import { connect, readToEnd } from './sockets.js';

/**
 * An upstream that writes its name as soon as a client connects. By default it then
 * ends; with `hold`, it keeps the connection until the client ends it (so the proxy's
 * count of active connections on it stays up for as long as the test wants).
 */
export function startWhoami(name: string, options: { hold?: boolean; host?: string; port?: number } = {}): Promise<TestServer> {
  return startServer(
    (socket) => {
      if (!options.hold) return void socket.end(name);
      socket.write(name);
      socket.resume();
      socket.on('end', () => socket.end());
    },
    options.host,
    { port: options.port },
  );
}

/** Connects through the proxy to a non-holding whoami upstream and returns its name. */
export async function whoAnswers(port: number, localAddress?: string, host = '127.0.0.1'): Promise<string> {
  const socket = await connect(port, host, localAddress);
  try {
    return (await readToEnd(socket)).toString();
  } finally {
    socket.destroy();
  }
}

/** A held connection through the proxy to a holding whoami upstream: who answered, and the socket. */
export async function holdConnection(port: number, localAddress?: string): Promise<{ name: string; socket: Socket }> {
  const socket = await connect(port, '127.0.0.1', localAddress);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return { name: chunk.toString(), socket };
}

/** Waits for the socket to be closed by the proxy and asserts it received not a single byte. */
export async function assertClosedWithoutAByte(socket: Socket, what = 'refused client'): Promise<void> {
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.on('error', () => undefined);
  // Not events.once: it rejects on 'error', and a reset is one of the ways to be refused.
  if (!socket.destroyed)
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.once('end', () => resolve());
    });
  socket.destroy();
  assert.equal(received, 0, `${what} received ${received} bytes`);
}

/** Resolves once `count` log lines (so far and later) have matched. */
export async function waitForLogCount(proxy: TestProxy, predicate: (line: LogLine) => boolean, count: number, timeoutMs = 10_000): Promise<void> {
  let seen = 0;
  // waitForLog tries the lines logged so far in order, then each new one: every match counts once.
  await proxy.waitForLog((line) => predicate(line) && ++seen >= count, timeoutMs);
}

/** Ends a held client connection and waits for the proxy's access-log line for it. */
export async function endHeld(proxy: TestProxy, socket: Socket): Promise<void> {
  const local = `${socket.localAddress}:${socket.localPort}`;
  socket.end();
  socket.resume();
  await proxy.waitForLog((line) => line.event === 'close' && line.client === local);
  socket.destroy();
}

// -- schedule windows around the current time ------------------------------------------------

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** The local weekday and minute of the day in `timeZone` at `instant`, read from Intl (not from the proxy's code). */
export function wallClock(timeZone: string, instant = Date.now()): { weekday: Weekday; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }).formatToParts(instant);
  const part = (type: string): string => parts.find((p) => p.type === type)!.value;
  return { weekday: part('weekday').toLowerCase() as Weekday, minute: Number(part('hour')) * 60 + Number(part('minute')) };
}

/**
 * A schedule window of `lengthMin` minutes starting `startOffsetMin` minutes from now
 * (negative: in the past), in `timeZone`'s wall time: its day is the weekday on which it
 * starts, and it crosses midnight when it runs past 24:00.
 */
export function windowFromNow(
  timeZone: string,
  startOffsetMin: number,
  lengthMin: number,
): { days: Weekday[]; from: string; to: string; crossesMidnight: boolean } {
  const start = wallClock(timeZone, Date.now() + startOffsetMin * 60_000);
  const end = start.minute + lengthMin;
  return {
    days: [start.weekday],
    from: hhmm(start.minute),
    to: end === 24 * 60 ? '24:00' : hhmm(end % (24 * 60)),
    crossesMidnight: end > 24 * 60,
  };
}

/** Every weekday but `day`. */
export function otherDays(day: Weekday): Weekday[] {
  return WEEKDAYS.filter((d) => d !== day);
}

/**
 * A fixed-offset zone (Etc/GMT±N, whole hours, no DST) in which the local hour now is
 * `hour`: lets a test place "now" where it needs it, e.g. just after local midnight.
 */
export function zoneWhereHourIs(hour: number): string {
  const utcHour = new Date().getUTCHours();
  let offset = (((hour - utcHour) % 24) + 24) % 24; // 0..23
  if (offset > 14) offset -= 24; // Etc zones run from UTC-12 to UTC+14
  // POSIX sign convention: Etc/GMT-3 is three hours ahead of UTC.
  return offset === 0 ? 'Etc/GMT' : offset > 0 ? `Etc/GMT-${offset}` : `Etc/GMT+${-offset}`;
}

function hhmm(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}
