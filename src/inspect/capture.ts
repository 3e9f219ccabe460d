/**
 * `inspect.capture`: one proxied connection as two TCP conversations in the pcap file, as
 * a sniffer on each side of the proxy would have seen them:
 *
 *   client -> proxyFront   carries what the client sent and what it received, and
 *   proxyBack -> upstream  carries what the upstream received and what it sent,
 *
 * so with filters the capture shows both the original and the filtered bytes. Each
 * conversation opens with SYN, SYN-ACK, ACK, carries the payload in segments of at most
 * 65000 bytes with consistent sequence and acknowledgement numbers, and ends with a FIN
 * per side (when that direction ends, or when the connection is torn down).
 */
import { randomInt } from 'node:crypto';
import type { Filter, Push } from '../filters/filter.js';
import { conversationAddresses, encodeTcpFrame, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, type FrameEndpoint } from './packet.js';
import { PCAP_RECORD_HEADER, type PcapWriter } from './pcap-writer.js';

/** Payload bytes per synthesized segment (an IPv4 packet is at most 65535 bytes). */
export const MAX_SEGMENT_PAYLOAD = 65_000;

export interface Address {
  readonly address: string;
  readonly port: number;
}

export interface CapturedConnection {
  readonly client: Address;
  readonly proxyFront: Address;
  readonly proxyBack: Address;
  readonly upstream: Address;
}

/** Locally administered MACs: client, proxy (front), proxy (back), upstream. */
const MACS = [1, 2, 3, 4].map((n) => Buffer.from([0x02, 0, 0, 0, 0, n]));

const INITIATOR = 0;
const RESPONDER = 1;
type Side = typeof INITIATOR | typeof RESPONDER;

class TcpConversation {
  private readonly ends: readonly [FrameEndpoint, FrameEndpoint];
  /** The next sequence number of each side. */
  private readonly next: [number, number];
  private readonly finished = [false, false];
  private readonly ipIds = [randomInt(0x10000), randomInt(0x10000)];

  constructor(
    private readonly writer: PcapWriter,
    initiator: Address,
    responder: Address,
    macs: readonly [Buffer, Buffer],
  ) {
    const [initiatorIp, responderIp] = conversationAddresses(initiator.address, responder.address);
    this.ends = [
      { mac: macs[0], ip: initiatorIp, port: initiator.port },
      { mac: macs[1], ip: responderIp, port: responder.port },
    ];
    this.next = [randomInt(2 ** 32), randomInt(2 ** 32)];
    this.control(INITIATOR, TCP_SYN);
    this.control(RESPONDER, TCP_SYN | TCP_ACK);
    this.segment(INITIATOR, TCP_ACK);
  }

  send(side: Side, payload: Buffer): void {
    if (this.finished[side]) return;
    for (let offset = 0; offset < payload.length; offset += MAX_SEGMENT_PAYLOAD) {
      this.segment(side, TCP_PSH | TCP_ACK, payload.subarray(offset, offset + MAX_SEGMENT_PAYLOAD));
    }
  }

  /** FIN from `side`, acknowledged by the other side. */
  finish(side: Side): void {
    if (this.finished[side]) return;
    this.finished[side] = true;
    this.control(side, TCP_FIN | TCP_ACK);
    this.segment(side === INITIATOR ? RESPONDER : INITIATOR, TCP_ACK);
  }

  /** SYN and FIN take one sequence number. */
  private control(side: Side, flags: number): void {
    this.segment(side, flags);
    this.next[side] = (this.next[side] + 1) >>> 0;
  }

  private segment(side: Side, flags: number, payload?: Buffer): void {
    const other = side === INITIATOR ? RESPONDER : INITIATOR;
    const frame = encodeTcpFrame(PCAP_RECORD_HEADER, {
      from: this.ends[side],
      to: this.ends[other],
      seq: this.next[side],
      ack: this.next[other],
      flags,
      ipId: this.ipIds[side]!++,
      payload,
    });
    this.writer.writeRecord(frame);
    if (payload) this.next[side] = (this.next[side] + payload.length) >>> 0;
  }
}

export class ConnectionCapture {
  private readonly front: TcpConversation;
  private readonly back: TcpConversation;
  private closed = false;

  constructor(
    private readonly writer: PcapWriter,
    connection: CapturedConnection,
  ) {
    this.front = new TcpConversation(writer, connection.client, connection.proxyFront, [MACS[0]!, MACS[1]!]);
    this.back = new TcpConversation(writer, connection.proxyBack, connection.upstream, [MACS[2]!, MACS[3]!]);
  }

  /** The tap at the start of to_upstream: bytes the client sent. */
  fromClient(): Filter {
    return this.tap(this.front, INITIATOR);
  }

  /** The tap at the end of to_upstream: bytes the proxy sends upstream. */
  toUpstream(): Filter {
    return this.tap(this.back, INITIATOR);
  }

  /** The tap at the start of to_client: bytes the upstream sent. */
  fromUpstream(): Filter {
    return this.tap(this.back, RESPONDER);
  }

  /** The tap at the end of to_client: bytes the proxy sends the client. */
  toClient(): Filter {
    return this.tap(this.front, RESPONDER);
  }

  /**
   * One tap for a place where the proxy changes nothing (an on-demand capture, which joins
   * a connection midway): what crosses it is recorded on both sides of the proxy.
   */
  passThrough(direction: 'to_upstream' | 'to_client'): Filter {
    const side = direction === 'to_upstream' ? INITIATOR : RESPONDER;
    const front = this.tap(this.front, side);
    const back = this.tap(this.back, side);
    return {
      data: (chunk, push) => {
        void front.data(chunk, () => undefined);
        return back.data(chunk, push);
      },
      end: (push) => {
        void front.end!(push);
        return back.end!(push);
      },
    };
  }

  /** The connection is gone: FIN for every side that has not ended yet. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const conversation of [this.front, this.back]) {
      conversation.finish(INITIATOR);
      conversation.finish(RESPONDER);
    }
  }

  private tap(conversation: TcpConversation, side: Side): Filter {
    const { writer } = this;
    return {
      data(chunk: Buffer, push: Push): void | Promise<void> {
        conversation.send(side, chunk);
        push(chunk);
        // A disk slower than the traffic slows the traffic, rather than queueing without bound.
        return writer.congested ? writer.whenDrained() : undefined;
      },
      end(): void {
        conversation.finish(side);
      },
    };
  }
}
