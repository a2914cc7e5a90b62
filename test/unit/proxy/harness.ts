/**
 * A stack over an in-memory transport and a manual clock, with a ProxyCore and a tiny routing policy,
 * for the proxy tests: requests are injected as if they arrived on a flow, everything sent is recorded.
 */
import { type StackTransport, type StackUser, Stack, answerCancel } from '../../../src/core/index.js';
import { silentLogger } from '../../../src/log/index.js';
import {
  SipRequest, type SipResponse, createResponse, parseMessage, serializeMessage,
} from '../../../src/sip/index.js';
import type { InviteServerTransaction, ServerTransaction, TimerHandle, Timers } from '../../../src/transaction/index.js';
import {
  type Destination, type Flow, type ListenSpec, type TransportProtocol, TransportError,
} from '../../../src/transport/types.js';
import { ProxyCore } from '../../../proxy/proxy-core.js';
import type { ProxyContext } from '../../../proxy/proxy-context.js';
import type { ForwardOptions, ForwardTarget, ProxyCoreOptions } from '../../../proxy/types.js';

export const PROXY_IP = '192.0.2.1';
export const CALLER = { address: '198.51.100.7', port: 5060 };

const LISTENERS: ListenSpec[] = [
  { protocol: 'udp', address: PROXY_IP, port: 5060 },
  { protocol: 'tcp', address: PROXY_IP, port: 5060 },
  { protocol: 'tls', address: PROXY_IP, port: 5061 },
  { protocol: 'ws', address: PROXY_IP, port: 8080 },
  { protocol: 'wss', address: PROXY_IP, port: 8443 },
];

/** Timers that fire only inside `tick()`, in due order. */
export class ManualClock implements Timers {
  now = 0;
  private seq = 0;
  private readonly entries = new Set<{ due: number; seq: number; cb: () => void }>();

  setTimeout(cb: () => void, ms: number): TimerHandle {
    const e = { due: this.now + Math.max(0, ms), seq: this.seq++, cb };
    this.entries.add(e);
    return e;
  }

  clearTimeout(handle: TimerHandle): void {
    this.entries.delete(handle as { due: number; seq: number; cb: () => void });
  }

  tick(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      let next: { due: number; seq: number; cb: () => void } | undefined;
      for (const e of this.entries) {
        if (e.due <= target && (next === undefined || e.due < next.due || (e.due === next.due && e.seq < next.seq))) next = e;
      }
      if (next === undefined) break;
      this.entries.delete(next);
      this.now = next.due;
      next.cb();
    }
    this.now = target;
  }
}

export interface Sent {
  message: SipRequest | SipResponse;
  destination: Destination;
}

/** A StackTransport that records every send and can fail the next ones. */
export class MemoryTransport implements StackTransport {
  readonly sent: Sent[] = [];
  private failures = 0;

  constructor(readonly listeners: ListenSpec[] = LISTENERS) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  failNextSends(n = 1): void {
    this.failures += n;
  }

  listenerFor(protocol: TransportProtocol): ListenSpec | undefined {
    return this.listeners.find((l) => l.protocol === protocol);
  }

  send(data: Buffer, destination: Destination): Promise<Flow> {
    this.sent.push({ message: parseMessage(data), destination });
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new TransportError('TRANSPORT_ERR_SEND', 'memory transport told to fail'));
    }
    return Promise.resolve(flowOf(destination));
  }
}

/** The flow a message to / from this destination travels on. */
export function flowOf(d: { protocol: TransportProtocol; address: string; port: number; flowId?: string }): Flow {
  const local = LISTENERS.find((l) => l.protocol === d.protocol)!;
  return {
    id: d.flowId ?? `${d.protocol}:${d.address}:${d.port}`,
    protocol: d.protocol,
    local: { address: local.address, port: local.port },
    remote: { address: d.address, port: d.port },
  };
}

export function udp(address: string, port = 5060): Destination {
  return { protocol: 'udp', address, port };
}

export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

type Route = (request: SipRequest, tx: ServerTransaction) => ForwardTarget[];

/** The routing policy of the tests: forward to what `route` says, CANCEL per §16.10. */
class TestPolicy implements StackUser {
  route: Route = () => [];
  options: ForwardOptions = {};
  /** Every context forward() made, in order. */
  readonly contexts: ProxyContext[] = [];
  constructor(private readonly stack: Stack, private readonly proxy: ProxyCore) {}

  onRequest(request: SipRequest, tx: ServerTransaction, cancels?: InviteServerTransaction): void {
    if (request.method === 'CANCEL') {
      if (cancels === undefined) {
        answerCancel(this.stack, tx, cancels);
        return;
      }
      this.stack.respond(tx, 200);
      this.proxy.cancel(cancels);
      return;
    }
    this.contexts.push(this.proxy.forward(request, tx, this.route(request, tx), this.options));
  }

  onStrayResponse(response: SipResponse, flow: Flow): void {
    this.proxy.onStrayResponse(response, flow);
  }

  onFlowClosed(flow: Flow): void {
    this.proxy.onFlowClosed(flow);
  }
}

export interface Harness {
  stack: Stack;
  proxy: ProxyCore;
  transport: MemoryTransport;
  clock: ManualClock;
  policy: TestPolicy;
  /** Delivers a message as if it arrived on `flow` (the caller's UDP flow by default). */
  receive(message: SipRequest | SipResponse | string, flow?: Flow): void;
  /** Requests sent downstream with this method, in order. */
  requests(method: string): Array<{ request: SipRequest; destination: Destination }>;
  /** Responses sent upstream (to anyone), in order. */
  responses(): SipResponse[];
  /** A branch's answer: a response to `request` as sent downstream, arriving from `destination`. */
  answer(sent: { request: SipRequest; destination: Destination }, status: number, options?: { toTag?: string; headers?: Array<[string, string]> }): void;
}

export async function harness(options: Partial<ProxyCoreOptions> & { listeners?: ListenSpec[] } = {}): Promise<Harness> {
  const clock = new ManualClock();
  const transport = new MemoryTransport(options.listeners);
  const stack = new Stack({ logger: silentLogger(), createTransport: () => transport, timers: clock, serverHeader: '', sendTrying: true });
  const proxy = new ProxyCore({ stack, logger: silentLogger(), timers: clock, secret: Buffer.from('test secret'), ...options });
  const policy = new TestPolicy(stack, proxy);
  stack.setUser(policy);
  await stack.start();
  const h: Harness = {
    stack, proxy, transport, clock, policy,
    receive(message, flow = flowOf({ protocol: 'udp', ...CALLER })) {
      const data = typeof message === 'string' ? Buffer.from(message, 'latin1') : serializeMessage(message);
      stack.onMessage(data, flow);
    },
    requests(method) {
      return transport.sent
        .filter((s): s is { message: SipRequest; destination: Destination } => s.message instanceof SipRequest && s.message.method === method)
        .map((s) => ({ request: s.message, destination: s.destination }));
    },
    responses() {
      return transport.sent.map((s) => s.message).filter((m): m is SipResponse => !(m instanceof SipRequest));
    },
    answer(sent, status, o = {}) {
      const r = createResponse(sent.request, status, { toTag: o.toTag ?? `tag${status}`, headers: o.headers });
      stack.onMessage(serializeMessage(r), flowOf(sent.destination));
    },
  };
  return h;
}

export interface InviteOptions {
  method?: string;
  uri?: string;
  transport?: string;
  sentBy?: string;
  branch?: string;
  callId?: string;
  toTag?: string;
  maxForwards?: number | null;
  extra?: string[];
}

/** A request from the caller, as text. */
export function request(o: InviteOptions = {}): string {
  const method = o.method ?? 'INVITE';
  return [
    `${method} ${o.uri ?? 'sip:bob@example.com'} SIP/2.0`,
    `Via: SIP/2.0/${o.transport ?? 'UDP'} ${o.sentBy ?? '198.51.100.7:5060'};branch=${o.branch ?? 'z9hG4bKcaller1'};rport`,
    ...(o.maxForwards === null ? [] : [`Max-Forwards: ${o.maxForwards ?? 70}`]),
    `To: Bob <sip:bob@example.com>${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`,
    'From: Alice <sip:alice@example.com>;tag=1928301774',
    `Call-ID: ${o.callId ?? 'a84b4c76e66710@pc33.example.com'}`,
    `CSeq: 314159 ${method}`,
    'Contact: <sip:alice@198.51.100.7>',
    ...(o.extra ?? []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** A CANCEL for the INVITE `request()` builds with the same options. */
export function cancelFor(o: InviteOptions = {}): string {
  return request({ ...o, method: 'CANCEL' });
}
