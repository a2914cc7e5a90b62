/** Raw loopback clients and a recording TransportUser for the transport tests. */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { createLogger, type Logger } from '../../../src/log/index.js';
import type { Flow, TransportProtocol, TransportUser } from '../../../src/transport/index.js';

/** Polls `probe` until it returns something other than undefined; rejects after timeoutMs. */
export async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A SIP request with a body of `bodySize` bytes, framed by Content-Length. */
export function sipRequest(tag: string, bodySize = 0): Buffer {
  const body = 'x'.repeat(bodySize);
  return Buffer.from(
    `OPTIONS sip:${tag}@example.com SIP/2.0\r\n` +
      'Via: SIP/2.0/TCP client.invalid;branch=z9hG4bK' + tag + '\r\n' +
      'Max-Forwards: 70\r\n' +
      'From: <sip:a@example.com>;tag=1\r\n' +
      'To: <sip:b@example.com>\r\n' +
      `Call-ID: ${tag}\r\n` +
      'CSeq: 1 OPTIONS\r\n' +
      `Content-Length: ${body.length}\r\n` +
      '\r\n' +
      body,
    'latin1',
  );
}

export function sipResponse(tag: string): Buffer {
  return Buffer.from(
    'SIP/2.0 200 OK\r\n' +
      'Via: SIP/2.0/TCP client.invalid;branch=z9hG4bK' + tag + '\r\n' +
      'From: <sip:a@example.com>;tag=1\r\n' +
      'To: <sip:b@example.com>;tag=2\r\n' +
      `Call-ID: ${tag}\r\n` +
      'CSeq: 1 OPTIONS\r\n' +
      'Content-Length: 0\r\n' +
      '\r\n',
    'latin1',
  );
}

/** Records what the transport hands to the core. */
export class RecordingUser implements TransportUser {
  readonly messages: { data: Buffer; flow: Flow }[] = [];
  readonly closed: { flow: Flow; reason: string }[] = [];

  onMessage(data: Buffer, flow: Flow): void {
    this.messages.push({ data: Buffer.from(data), flow });
  }

  onFlowClosed(flow: Flow, reason: string): void {
    this.closed.push({ flow, reason });
  }

  message(index = 0, timeoutMs?: number): Promise<{ data: Buffer; flow: Flow }> {
    return waitFor(() => this.messages[index], `message #${index + 1}`, timeoutMs);
  }

  closedFlow(id: string, timeoutMs?: number): Promise<{ flow: Flow; reason: string }> {
    return waitFor(() => this.closed.find((c) => c.flow.id === id), `onFlowClosed(${id})`, timeoutMs);
  }
}

/** A logger whose lines can be inspected. */
export function capturingLogger(level: 'debug' | 'info' | 'warn' = 'debug'): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level, destination });
  return {
    logger,
    lines: () => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A peer of the softswitch speaking one transport, as a phone or a browser would. */
export interface TestClient {
  readonly protocol: TransportProtocol;
  /** The client's own port, i.e. the remote port the server sees. */
  readonly localPort: number;
  /** One datagram (udp), some bytes (tcp, tls), or one frame (ws, wss). */
  write(data: Buffer | string): Promise<void>;
  /** Writes one message in small pieces with pauses between them (WebSocket: continuation frames). */
  writeSlowly(data: Buffer, pieceSize: number, pauseMs: number): Promise<void>;
  /** Everything received so far, concatenated. */
  received(): Buffer;
  /** Each datagram / chunk / frame as it arrived. */
  readonly items: Buffer[];
  /** Waits until the received bytes contain `needle`. */
  waitForData(needle: Buffer | string, timeoutMs?: number): Promise<void>;
  readonly isClosed: boolean;
  /** Resolves when the server closes the connection (never for udp). */
  waitClosed(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface ClientOptions {
  wsProtocols?: string[];
  autoPong?: boolean;
  /** The client's own address (another loopback address, e.g. 127.0.0.2, to look like another host). */
  localAddress?: string;
}

export async function openClient(protocol: TransportProtocol, host: string, port: number, options: ClientOptions = {}): Promise<TestClient> {
  switch (protocol) {
    case 'udp':
      return udpClient(host, port, options.localAddress);
    case 'tcp':
    case 'tls':
      return streamClient(protocol, host, port, options.localAddress);
    case 'ws':
    case 'wss':
      return wsClient(protocol, host, port, options);
  }
}

function base(protocol: TransportProtocol): {
  items: Buffer[];
  state: { closed: boolean };
  common: Pick<TestClient, 'protocol' | 'items' | 'received' | 'waitForData' | 'waitClosed'>;
} {
  const items: Buffer[] = [];
  const state = { closed: false };
  const received = (): Buffer => Buffer.concat(items);
  return {
    items,
    state,
    common: {
      protocol,
      items,
      received,
      waitForData: async (needle, timeoutMs) => {
        await waitFor(() => (received().includes(needle) ? true : undefined), `client to receive ${JSON.stringify(String(needle).slice(0, 40))}`, timeoutMs);
      },
      waitClosed: async (timeoutMs) => {
        await waitFor(() => (state.closed ? true : undefined), 'the server to close the connection', timeoutMs);
      },
    },
  };
}

async function udpClient(host: string, port: number, localAddress = host): Promise<TestClient> {
  const socket: DgramSocket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const { items, state, common } = base('udp');
  socket.on('message', (msg) => items.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, localAddress, () => resolve()));
  return {
    ...common,
    localPort: socket.address().port,
    get isClosed() {
      return state.closed;
    },
    write: (data) => new Promise((resolve, reject) => socket.send(Buffer.from(data), port, host, (err) => (err ? reject(err) : resolve()))),
    writeSlowly: () => Promise.reject(new Error('a datagram cannot be written in pieces')),
    close: () =>
      new Promise((resolve) => {
        if (state.closed) return resolve();
        state.closed = true;
        socket.close(() => resolve());
      }),
  };
}

async function streamClient(protocol: 'tcp' | 'tls', host: string, port: number, localAddress?: string): Promise<TestClient> {
  const { items, state, common } = base(protocol);
  const socket: Socket = await new Promise((resolve, reject) => {
    const s: Socket =
      protocol === 'tls'
        ? tlsConnect({ host, port, rejectUnauthorized: false, ...(localAddress === undefined ? {} : { localAddress }) }, () => resolve(s))
        : netConnect({ host, port, ...(localAddress === undefined ? {} : { localAddress }) }, () => resolve(s));
    s.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => items.push(chunk));
  socket.on('close', () => {
    state.closed = true;
  });
  return {
    ...common,
    localPort: socket.localPort ?? 0,
    get isClosed() {
      return state.closed;
    },
    write: (data) => new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve()))),
    writeSlowly: async (data, pieceSize, pauseMs) => {
      for (let i = 0; i < data.length; i += pieceSize) {
        await new Promise<void>((resolve, reject) => socket.write(data.subarray(i, i + pieceSize), (err) => (err ? reject(err) : resolve())));
        await delay(pauseMs);
      }
    },
    close: () =>
      new Promise((resolve) => {
        if (state.closed) return resolve();
        socket.once('close', () => resolve());
        socket.destroy();
      }),
  };
}

async function wsClient(protocol: 'ws' | 'wss', host: string, port: number, options: ClientOptions): Promise<TestClient> {
  const { items, state, common } = base(protocol);
  const url = `${protocol}://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const ws = new WebSocket(url, options.wsProtocols ?? ['sip'], {
    rejectUnauthorized: false, autoPong: options.autoPong ?? true, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  });
  ws.on('message', (data: Buffer) => items.push(data));
  ws.on('close', () => {
    state.closed = true;
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    ws.once('error', reject);
  });
  // The TCP port the server sees.
  const localPort = (ws as unknown as { _socket: Socket })._socket.localPort ?? 0;
  return {
    ...common,
    localPort,
    get isClosed() {
      return state.closed;
    },
    write: (data) => new Promise((resolve, reject) => ws.send(data, (err) => (err ? reject(err) : resolve()))),
    writeSlowly: async (data, pieceSize, pauseMs) => {
      for (let i = 0; i < data.length; i += pieceSize) {
        const fin = i + pieceSize >= data.length;
        await new Promise<void>((resolve, reject) => ws.send(data.subarray(i, i + pieceSize), { fin, binary: false }, (err) => (err ? reject(err) : resolve())));
        await delay(pauseMs);
      }
    },
    close: () =>
      new Promise((resolve) => {
        if (state.closed || ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.terminate();
      }),
  };
}
