/**
 * A pino destination that sends each log line to syslog as an RFC 5424 message:
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG
 *
 * PRI is facility * 8 + the severity of the line's level; MSGID is the line's `event`
 * (`close`, `reject`, `listening`...) or "-"; MSG is the JSON line itself, so that nothing
 * of the structured entry is lost (MSG-ANY: no BOM, which many receivers mishandle).
 * UDP sends one datagram per message (RFC 5426); TCP and unix stream sockets frame each
 * message by octet counting ("LEN SP MSG", RFC 6587 3.4.1) or, with `framing: newline`,
 * end it with LF.
 *
 * Logging must never stall or crash the proxy: a stream destination that is down buffers
 * up to MAX_PENDING_BYTES and drops beyond it, reconnects with back-off, and reports
 * trouble on stderr (once per outage). None of its sockets or timers keep the process alive.
 *
 * Why not a library: pino-syslog formats but leaves the network to pino-socket, each a
 * transport in its own worker thread; this is one small class in the calling thread.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { hostname } from 'node:os';
import { FACILITIES, type SyslogConfig } from './syslog-config.js';

const MAX_PENDING_BYTES = 1024 * 1024;
const RECONNECT = { baseMs: 500, maxMs: 30_000 };

/** pino level label -> RFC 5424 severity. */
const SEVERITY: Readonly<Record<string, number>> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };

export class SyslogDestination {
  private readonly header: string;
  private readonly facilityCode: number;
  private udp: dgram.Socket | undefined;
  private stream: net.Socket | undefined;
  private connected = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dropped = 0;
  private reconnectMs = RECONNECT.baseMs;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private troubleReported = false;
  private closed = false;

  constructor(private readonly config: SyslogConfig) {
    this.facilityCode = FACILITIES.indexOf(config.facility);
    // RFC 5424 HOSTNAME: printable ASCII, at most 255 characters, "-" when unknown.
    const host =
      hostname()
        .replace(/[^!-~]/g, '')
        .slice(0, 255) || '-';
    this.header = ` ${host} ${config.app_name} ${process.pid} `;
    if (config.address.transport === 'udp') this.openUdp();
    else this.connect();
  }

  /** pino calls this with one serialized JSON line (ending with a newline). */
  write(line: string): void {
    if (this.closed) return;
    const message = this.format(line.endsWith('\n') ? line.slice(0, -1) : line);
    const address = this.config.address;
    if (address.transport === 'udp') {
      this.udp!.send(message, address.port, address.host);
      return;
    }
    const frame =
      this.config.framing === 'newline' ? Buffer.from(`${message}\n`) : Buffer.concat([Buffer.from(`${Buffer.byteLength(message)} `), Buffer.from(message)]);
    if (this.connected && this.stream!.writableLength < MAX_PENDING_BYTES) this.stream!.write(frame);
    else this.queue(frame);
  }

  /** The RFC 5424 message for one pino JSON line. */
  format(line: string): string {
    const severity = SEVERITY[jsonStringField(line, 'level') ?? ''] ?? 6;
    const event = jsonStringField(line, 'event');
    const msgid = event !== undefined && /^[!-~]{1,32}$/.test(event) ? event : '-';
    return `<${this.facilityCode * 8 + severity}>1 ${new Date().toISOString()}${this.header}${msgid} - ${line}`;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.udp?.close();
    this.stream?.end();
  }

  private openUdp(): void {
    const { host } = this.config.address as { host: string };
    this.udp = dgram.createSocket(net.isIP(host) === 6 ? 'udp6' : 'udp4');
    this.udp.on('error', (error) => this.reportTrouble(error));
    this.udp.unref();
  }

  private connect(): void {
    const address = this.config.address;
    const socket =
      address.transport === 'unix'
        ? net.connect({ path: address.path })
        : net.connect({ host: (address as { host: string }).host, port: (address as { port: number }).port });
    this.stream = socket;
    socket.unref();
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.connected = true;
      this.reconnectMs = RECONNECT.baseMs;
      this.troubleReported = false;
      if (this.dropped > 0) process.stderr.write(`tcpproxy: syslog: ${this.dropped} message(s) dropped while ${this.describe()} was unreachable\n`);
      this.dropped = 0;
      for (const frame of this.pending) socket.write(frame);
      this.pending = [];
      this.pendingBytes = 0;
    });
    socket.on('error', (error) => this.reportTrouble(error));
    socket.on('close', () => {
      this.connected = false;
      if (this.closed) return;
      this.reconnectTimer = setTimeout(() => this.connect(), this.reconnectMs).unref();
      this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT.maxMs);
    });
  }

  private queue(frame: Buffer): void {
    if (this.pendingBytes + frame.length > MAX_PENDING_BYTES) {
      this.dropped++;
      return;
    }
    this.pending.push(frame);
    this.pendingBytes += frame.length;
  }

  private reportTrouble(error: Error): void {
    if (this.troubleReported) return;
    this.troubleReported = true;
    process.stderr.write(`tcpproxy: syslog: ${this.describe()}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`);
  }

  private describe(): string {
    const address = this.config.address;
    return address.transport === 'unix' ? `unix:${address.path}` : `${address.transport}://${address.host}:${address.port}`;
  }
}

/**
 * The value of a top-level string field of a pino line, found without parsing the line:
 * pino writes `"key":"value"` for the fields this looks for (level, event), whose values
 * never contain quotes. Undefined when absent.
 */
function jsonStringField(line: string, key: string): string | undefined {
  const marker = `"${key}":"`;
  const start = line.indexOf(marker);
  if (start < 0) return undefined;
  const end = line.indexOf('"', start + marker.length);
  return end < 0 ? undefined : line.slice(start + marker.length, end);
}
