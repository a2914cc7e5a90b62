/** Messages, flows and a ready layer for the transaction tests. */
import {
  type SipRequest, type SipResponse, createResponse, parseMessage, serializeMessage,
} from '../../../src/sip/index.js';
import { silentLogger } from '../../../src/log/index.js';
import {
  type ClientTransaction, type ClientTransactionUser, TransactionLayer, type TimerConfig,
} from '../../../src/transaction/index.js';
import type { Destination, Flow, TransportProtocol } from '../../../src/transport/types.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeTransport } from '../../helpers/fake-transport.js';

export interface RequestOptions {
  branch?: string;
  transport?: string;
  sentBy?: string;
  /** Parameters added to the top Via after the branch, e.g. `;received=198.51.100.7;rport=40000`. */
  viaParams?: string;
  /** Extra Via lines below the top one. */
  lowerVias?: string[];
  uri?: string;
  toTag?: string;
  fromTag?: string;
  callId?: string;
  cseq?: number;
  /** Extra header lines, CRLF-free. */
  extra?: string[];
}

/** A request as it would arrive (or be sent): parsed from text so it behaves like one off the wire. */
export function makeRequest(method: string, o: RequestOptions = {}): SipRequest {
  const lines = [
    `${method} ${o.uri ?? 'sip:bob@example.com'} SIP/2.0`,
    `Via: SIP/2.0/${o.transport ?? 'UDP'} ${o.sentBy ?? '198.51.100.7:5060'}${o.branch === '' ? '' : `;branch=${o.branch ?? 'z9hG4bK776asdhds'}`}${o.viaParams ?? ''}`,
    ...(o.lowerVias ?? []).map((v) => `Via: ${v}`),
    'Max-Forwards: 70',
    `To: Bob <sip:bob@example.com>${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`,
    `From: Alice <sip:alice@example.com>;tag=${o.fromTag ?? '1928301774'}`,
    `Call-ID: ${o.callId ?? 'a84b4c76e66710@pc33.example.com'}`,
    `CSeq: ${o.cseq ?? 314159} ${method}`,
    'Contact: <sip:alice@198.51.100.7>',
    ...(o.extra ?? []),
    'Content-Length: 0',
    '',
    '',
  ];
  return parseMessage(Buffer.from(lines.join('\r\n'), 'latin1')) as SipRequest;
}

/** A response to `request` as the peer would send it (serialised and parsed again). */
export function makeResponse(request: SipRequest, status: number, toTag = 'as83kd9bs'): SipResponse {
  const r = createResponse(request, status, { toTag });
  return parseMessage(serializeMessage(r)) as SipResponse;
}

export function flow(protocol: TransportProtocol = 'udp', remote = { address: '198.51.100.7', port: 5060 }): Flow {
  return { id: `${protocol}:${remote.address}:${remote.port}`, protocol, local: { address: '192.0.2.1', port: protocol === 'tls' ? 5061 : 5060 }, remote };
}

export function destination(protocol: TransportProtocol = 'udp'): Destination {
  return { protocol, address: '203.0.113.9', port: protocol === 'tls' ? 5061 : 5060 };
}

export function setup(options: { timing?: Partial<TimerConfig>; sendTrying?: boolean | 'deferred' } = {}): {
  clock: FakeClock;
  transport: FakeTransport;
  layer: TransactionLayer;
} {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const layer = new TransactionLayer({ transport, logger: silentLogger(), timers: clock, ...options });
  return { clock, transport, layer };
}

/** Lets promise callbacks (send results and failures) run. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A TU that records what its client transaction tells it. */
export class RecordingUser implements ClientTransactionUser {
  readonly responses: SipResponse[] = [];
  readonly states: string[] = [];
  timeouts = 0;
  readonly errors: Error[] = [];

  onResponse(response: SipResponse, tx: ClientTransaction): void {
    this.responses.push(response);
    this.states.push(tx.state);
  }

  onTimeout(): void {
    this.timeouts++;
  }

  onTransportError(_tx: ClientTransaction, error: Error): void {
    this.errors.push(error);
  }

  get statuses(): number[] {
    return this.responses.map((r) => r.status);
  }
}
