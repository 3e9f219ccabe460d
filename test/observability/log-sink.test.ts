/**
 * The stdout log sink (log-sink.ts): lines are encoded into reused byte chunks and written
 * in batches, synchronously to a regular file, asynchronously to anything else (a pipe here).
 * Every line arrives whole, once and in order: multi-byte UTF-8, lines longer than a chunk,
 * batches cut by minLength, by the timer, and by the exit flush.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { LogSink } from '../../src/observability/log-sink.js';
import { eventually } from '../helpers/wait.js';

function scratchFile(): { path: string; fd: number; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'log-sink-'));
  const path = join(dir, 'out.log');
  const fd = openSync(path, 'w');
  return { path, fd, done: () => (closeSync(fd), rmSync(dir, { recursive: true, force: true })) };
}

/** Lines of every shape: short, multi-byte (2, 3 and 4 bytes per character), and longer than a 64 KiB chunk. */
function someLines(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    if (i % 997 === 0) return `{"i":${i},"big":"${'é'.repeat(40_000)}"}\n`;
    if (i % 7 === 0) return `{"i":${i},"text":"ünïcödé ✓ 𝄞 ${'x'.repeat(i % 300)}"}\n`;
    return `{"i":${i},"event":"close","bytes":${i * 31}}\n`;
  });
}

describe('log sink', { timeout: 30_000 }, () => {
  it('writes every line whole and in order, across many batches', async () => {
    const file = scratchFile();
    try {
      const sink = new LogSink(file.fd, { minLength: 4096, flushIntervalMs: 20 });
      const lines = someLines(20_000);
      for (const line of lines) sink.write(line);
      const expected = lines.join('');
      const expectedBytes = Buffer.byteLength(expected);
      await eventually(() => (readFileSync(file.path).length >= expectedBytes ? true : undefined), 'every byte written');
      assert.equal(readFileSync(file.path, 'utf8'), expected);
      assert.equal(sink.isBroken, false);
    } finally {
      file.done();
    }
  });

  it('writes a few lines below minLength on its timer', async () => {
    const file = scratchFile();
    try {
      const sink = new LogSink(file.fd, { minLength: 1 << 20, flushIntervalMs: 20 });
      sink.write('{"a":1}\n');
      sink.write('{"b":"ß"}\n');
      await eventually(() => (readFileSync(file.path, 'utf8') === '{"a":1}\n{"b":"ß"}\n' ? true : undefined), 'the timer flush');
    } finally {
      file.done();
    }
  });

  it('flushSync (the exit path) writes what is pending at once', () => {
    const file = scratchFile();
    try {
      const sink = new LogSink(file.fd, { minLength: 1 << 30, flushIntervalMs: 60_000 });
      const lines = someLines(3_000);
      for (const line of lines) sink.write(line);
      sink.flushSync();
      assert.equal(readFileSync(file.path, 'utf8'), lines.join(''));
    } finally {
      file.done();
    }
  });

  it('a line that comes while a batch is stuck in a full pipe goes out after it, with no later line to push it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-sink-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    let reader: Socket | undefined;
    try {
      const sink = new LogSink(writeFd, { minLength: 4096, flushIntervalMs: 20 });
      // Longer than the pipe's 64 KiB: its batch starts at once and waits (EAGAIN) until read.
      const first = `{"big":"${'x'.repeat(100_000)}"}\n`;
      sink.write(first);
      sink.write('{"late":1}\n');
      // This timer expires after the sink's (armed by the late line, 20 ms): that one has
      // fired, found the write in flight and done nothing, before the pipe is read at all.
      await delay(60);
      const chunks: Buffer[] = [];
      reader = new Socket({ fd: readFd, readable: true, writable: false });
      reader.on('data', (chunk) => chunks.push(chunk));
      const expected = `${first}{"late":1}\n`;
      await eventually(() => (Buffer.concat(chunks).length >= expected.length ? true : undefined), 'the late line after the stuck batch');
      assert.equal(Buffer.concat(chunks).toString('utf8'), expected);
    } finally {
      closeSync(writeFd);
      if (reader) reader.destroy();
      else closeSync(readFd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes to a pipe (asynchronously) every line whole and in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-sink-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // The read end first (non-blocking), so that opening the write end does not wait.
    const reader = new Socket({ fd: openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    const writeFd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const chunks: Buffer[] = [];
    reader.on('data', (chunk) => chunks.push(chunk));
    try {
      const sink = new LogSink(writeFd, { minLength: 4096, flushIntervalMs: 20 });
      const lines = someLines(20_000);
      for (const line of lines) sink.write(line);
      const expected = lines.join('');
      const expectedBytes = Buffer.byteLength(expected);
      await eventually(() => (Buffer.concat(chunks).length >= expectedBytes ? true : undefined), 'every byte through the pipe');
      assert.equal(Buffer.concat(chunks).toString('utf8'), expected);
      assert.equal(sink.isBroken, false);
    } finally {
      closeSync(writeFd);
      reader.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
