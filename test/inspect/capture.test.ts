import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startFilterProxy, streamLabels, type StreamLabels as Labels } from '../helpers/filter-proxy.js';
import { IPV6_LOOPBACK, TSHARK, requires } from '../helpers/requirements.js';
import { ACK, SYN, followStream, readPcap, type Segment } from './pcap-reader.js';
import { readBytes, readToEnd } from '../helpers/sockets.js';

const run = promisify(execFile);

async function withCaptureDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-capture-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Sends `request` (in two writes) and `response` through a capturing proxy; returns the parsed capture. */
async function captureExchange(
  dir: string,
  options: { host?: string; request: Buffer; response: Buffer; filters?: unknown[] },
): Promise<{ segments: Segment[]; labels: Labels; file: string }> {
  const harness = await startFilterProxy(
    { inspect: { capture: 'out/main.pcap' }, filters: options.filters },
    { baseDir: dir, ...(options.host ? { host: options.host } : {}) },
  );
  const file = join(dir, 'out/main.pcap');
  try {
    const proxied = await harness.open();
    const labels = streamLabels(proxied);
    const atUpstream = readToEnd(proxied.upstream);
    const half = Math.floor(options.request.length / 2);
    proxied.client.write(options.request.subarray(0, half));
    await readBytes(proxied.upstream, 1);
    proxied.client.end(options.request.subarray(half));
    await atUpstream;
    const atClient = readToEnd(proxied.client);
    proxied.upstream.end(options.response);
    await atClient;
    const line = await proxied.closed;
    assert.deepEqual([line.bytes_from_client, line.bytes_to_client], [options.request.length, options.response.length]);
    await harness.dispose(); // flushes the capture file
    return { segments: readPcap(await readFile(file)), labels, file };
  } catch (error) {
    await harness.dispose();
    throw error;
  }
}

test('capture: two TCP conversations with handshake, consistent seq/ack, payloads and FINs', { timeout: 15_000 }, async () => {
  await withCaptureDir(async (dir) => {
    const request = Buffer.from('hello upstream, hello!');
    const response = Buffer.from('hello client');
    const { segments, labels } = await captureExchange(dir, {
      request,
      response,
      filters: [{ type: 'replace', direction: 'to_upstream', match: 'hello', with: 'HELLO' }],
    });
    const { client, front, back, upstream } = labels;

    for (const [a, b] of [
      [client, front],
      [back, upstream],
    ] as const) {
      // The handshake: SYN, SYN-ACK acknowledging it, ACK acknowledging that.
      const [syn, synAck, ack] = segments.filter((s) => (s.src === a && s.dst === b) || (s.src === b && s.dst === a));
      assert.deepEqual([syn!.src, syn!.flags], [a, SYN]);
      assert.deepEqual([synAck!.src, synAck!.flags, synAck!.ack], [b, SYN | ACK, (syn!.seq + 1) >>> 0]);
      assert.deepEqual([ack!.src, ack!.flags, ack!.seq, ack!.ack], [a, ACK, (syn!.seq + 1) >>> 0, (synAck!.seq + 1) >>> 0]);
    }

    const fromClient = followStream(segments, client, front);
    const toUpstream = followStream(segments, back, upstream);
    const fromUpstream = followStream(segments, upstream, back);
    const toClient = followStream(segments, front, client);
    // The client's side shows what the client sent; the upstream's side what the filter made of it.
    assert.equal(fromClient.data.toString(), 'hello upstream, hello!');
    assert.equal(toUpstream.data.toString(), 'HELLO upstream, HELLO!');
    assert.equal(fromUpstream.data.toString(), 'hello client');
    assert.equal(toClient.data.toString(), 'hello client');
    for (const stream of [fromClient, toUpstream, fromUpstream, toClient]) {
      assert.equal(stream.finSeq, (stream.isn + 1 + stream.data.length) >>> 0, 'a FIN after the data');
    }
    // Acknowledgements follow the other side's data: the upstream's last segment acks all the request.
    const upstreamData = segments.filter((s) => s.src === upstream && s.payload.length > 0);
    assert.equal(upstreamData.at(-1)!.ack, (toUpstream.isn + 1 + toUpstream.data.length + 1) >>> 0);
  });
});

test('capture over IPv6 splits large payloads into segments of at most 65000 bytes', { timeout: 15_000 }, async (t) => {
  if (!(await requires(t, IPV6_LOOPBACK))) return;
  await withCaptureDir(async (dir) => {
    const request = Buffer.alloc(300_000, 'x');
    const response = Buffer.alloc(150_000, 'y');
    const { segments, labels } = await captureExchange(dir, { host: '::1', request, response });
    const { client, front } = labels;
    assert.ok(client.startsWith('[0:0:0:0:0:0:0:1]:'));
    assert.ok(followStream(segments, client, front).data.equals(request));
    assert.ok(followStream(segments, front, client).data.equals(response));
  });
});

test('capture file rotation: FILE, FILE.1, ... each a valid pcap, at most capture_keep kept', { timeout: 15_000 }, async () => {
  await withCaptureDir(async (dir) => {
    const harness = await startFilterProxy({ inspect: { capture: 'rot.pcap', capture_max_bytes: 20_000, capture_keep: 2 } }, { baseDir: dir });
    try {
      for (let i = 0; i < 4; i++) {
        const proxied = await harness.open();
        const atUpstream = readToEnd(proxied.upstream);
        proxied.client.end(Buffer.alloc(15_000, i));
        await atUpstream;
        proxied.upstream.end();
        await proxied.closed;
        // No pause needed between connections: the writer rotates record by record, so the
        // files fill up to capture_max_bytes however the writes were batched.
      }
    } finally {
      await harness.dispose();
    }
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ['rot.pcap', 'rot.pcap.1', 'rot.pcap.2']);
    for (const file of files) {
      const content = await readFile(join(dir, file));
      assert.ok(content.length <= 20_000 + 15_100, `${file} is ${content.length} bytes`);
      assert.ok(readPcap(content).length > 0);
    }
  });
});

test('capture is readable by tshark (Follow TCP stream)', { timeout: 30_000 }, async (t) => {
  if (!(await requires(t, TSHARK))) return;
  await withCaptureDir(async (dir) => {
    const request = 'GET /tshark HTTP/1.0\r\n\r\n';
    const response = 'HTTP/1.0 204 No Content\r\n\r\n';
    const { file } = await captureExchange(dir, { request: Buffer.from(request), response: Buffer.from(response) });
    const { stdout: summary } = await run('tshark', ['-r', file, '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.flags.str', '-e', 'tcp.analysis.flags']);
    assert.deepEqual(
      [
        ...new Set(
          summary
            .trim()
            .split('\n')
            .map((line) => line.split('\t')[0]),
        ),
      ],
      ['0', '1'],
      'two TCP streams',
    );
    assert.doesNotMatch(summary, /\t\S+$/m, 'no TCP analysis warnings (lost segments, bad acks)');
    for (const stream of ['0', '1']) {
      // Raw mode: one hex line per segment, the second node's lines indented.
      const { stdout } = await run('tshark', ['-r', file, '-q', '-z', `follow,tcp,raw,${stream}`]);
      const lines = stdout.split('\n').filter((line) => /^\t?[0-9a-f]+$/.test(line));
      const side = (indented: boolean): string =>
        Buffer.from(
          lines
            .filter((line) => line.startsWith('\t') === indented)
            .map((line) => line.trim())
            .join(''),
          'hex',
        ).toString();
      assert.equal(side(false), request);
      assert.equal(side(true), response);
    }
  });
});
