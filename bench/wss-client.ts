/**
 * bench/wss-client: one client process of the `wss` bench (forked by bench/wss.ts, talks to it over IPC).
 * It holds a slice of the softphones: for each, a WSS connection (the `ws` package, `sip` subprotocol, from
 * its own loopback source address) that REGISTERs with digest auth (REGISTER → 401 → REGISTER → 200), then
 * stays open, answering the server's WebSocket pings (ws does) and sending a CRLF keep-alive (RFC 5626 §4.4.1)
 * on one shared timer. Deliberately not SIP.js: a softphone here costs a socket and a few closures, so that
 * the clients are not what limits the run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';

export interface ClientSlice {
  /** wss://127.0.0.1:PORT of each server listener; softphone i uses ports[i % ports.length]. */
  ports: number[];
  domain: string;
  /** Users of this slice: username, password, source address. */
  phones: { username: string; password: string; localAddress: string }[];
  /** Handshakes + registrations in flight at once in this process. */
  concurrency: number;
  /** Interval of the CRLF keep-alive, ms (0: none, rely on the server's WebSocket pings). */
  keepAliveMs: number;
  /** Give up on one softphone (connect + register) after this long, ms. */
  timeoutMs: number;
}

export type ClientReport =
  | { type: 'registered'; registered: number; failed: number; latenciesMs: number[]; errors: Record<string, number>; seconds: number }
  | { type: 'status'; open: number; closedByPeer: number };

interface Phone {
  ws: WebSocket | undefined;
  open: boolean;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

function param(header: string, name: string): string | undefined {
  const m = new RegExp(`${name}="?([^",]*)"?`, 'i').exec(header);
  return m?.[1];
}

function headerOf(msg: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(msg.slice(0, msg.indexOf('\r\n\r\n')));
  return m?.[1]?.trim();
}

function register(p: ClientSlice['phones'][number], domain: string, callId: string, tag: string, cseq: number, contactHost: string, auth?: string): string {
  const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
  return [
    `REGISTER sip:${domain} SIP/2.0`,
    `Via: SIP/2.0/WSS ${contactHost};branch=${branch}`,
    'Max-Forwards: 70',
    `To: <sip:${p.username}@${domain}>`,
    `From: <sip:${p.username}@${domain}>;tag=${tag}`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${p.username}@${contactHost};transport=ws>;expires=3600`,
    'Expires: 3600',
    ...(auth ? [`Authorization: ${auth}`] : []),
    'User-Agent: bench-wss',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** Connects and registers one softphone; resolves with the REGISTER latency (first send → 200), ms. */
function connectAndRegister(slice: ClientSlice, index: number, phone: Phone, onClose: () => void): Promise<number> {
  const p = slice.phones[index]!;
  const port = slice.ports[index % slice.ports.length]!;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}`, 'sip', {
      rejectUnauthorized: false, perMessageDeflate: false, localAddress: p.localAddress, handshakeTimeout: slice.timeoutMs,
    });
    phone.ws = ws;
    const contactHost = `${randomBytes(5).toString('hex')}.invalid`;
    const callId = randomBytes(8).toString('hex');
    const tag = randomBytes(4).toString('hex');
    let started = 0;
    let done = false;
    const timer = setTimeout(() => fail(new Error('timeout')), slice.timeoutMs);
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.on('error', (err) => fail(new Error((err as NodeJS.ErrnoException).code ?? err.message)));
    ws.on('close', () => {
      if (phone.open) onClose();
      phone.open = false;
      fail(new Error('closed'));
    });
    ws.on('open', () => {
      started = performance.now();
      ws.send(register(p, slice.domain, callId, tag, 1, contactHost));
    });
    ws.on('message', (data) => {
      if (done) return;
      const msg = data.toString();
      if (msg.trim() === '') return; // a CRLF pong
      const status = Number(msg.slice(8, 11));
      if (status === 401) {
        const ch = headerOf(msg, 'WWW-Authenticate') ?? '';
        const realm = param(ch, 'realm') ?? slice.domain;
        const nonce = param(ch, 'nonce') ?? '';
        const opaque = param(ch, 'opaque');
        const qop = param(ch, 'qop') !== undefined ? 'auth' : undefined;
        const uri = `sip:${slice.domain}`;
        const ha1 = md5(`${p.username}:${realm}:${p.password}`);
        const ha2 = md5(`REGISTER:${uri}`);
        const cnonce = randomBytes(4).toString('hex');
        const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
        const auth = `Digest username="${p.username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`
          + (qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : '') + (opaque !== undefined ? `, opaque="${opaque}"` : '');
        ws.send(register(p, slice.domain, callId, tag, 2, contactHost, auth));
      } else if (status >= 200 && status < 300) {
        done = true;
        clearTimeout(timer);
        phone.open = true;
        resolve(performance.now() - started);
      } else if (status >= 300) {
        fail(new Error(`SIP ${status}`));
      }
    });
  });
}

async function run(slice: ClientSlice): Promise<void> {
  const phones: Phone[] = slice.phones.map(() => ({ ws: undefined, open: false }));
  let closedByPeer = 0;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let failed = 0;
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < phones.length) {
      const i = next++;
      try {
        latencies.push(await connectAndRegister(slice, i, phones[i]!, () => closedByPeer++));
      } catch (err) {
        failed++;
        const key = (err as Error).message;
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(slice.concurrency, phones.length) }, worker));
  const report: ClientReport = {
    type: 'registered', registered: latencies.length, failed, latenciesMs: latencies, errors, seconds: (performance.now() - started) / 1000,
  };
  process.send!(report);
  // One timer for every softphone of the process, not one per connection.
  const keepAlive = slice.keepAliveMs > 0
    ? setInterval(() => {
      for (const p of phones) if (p.open && p.ws?.readyState === WebSocket.OPEN) p.ws.send('\r\n\r\n');
    }, slice.keepAliveMs)
    : undefined;
  process.on('message', (m: { type: string }) => {
    if (m.type === 'status') {
      const status: ClientReport = { type: 'status', open: phones.filter((p) => p.open).length, closedByPeer };
      process.send!(status);
    } else if (m.type === 'close') {
      if (keepAlive) clearInterval(keepAlive);
      for (const p of phones) {
        p.open = false;
        p.ws?.terminate();
      }
      setTimeout(() => process.exit(0), 200);
    }
  });
}

process.once('message', (slice: ClientSlice) => {
  run(slice).catch((err: unknown) => {
    process.stderr.write(`wss-client: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
