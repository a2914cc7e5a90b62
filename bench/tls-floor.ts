/**
 * bench/tls-floor: what one idle connection costs a Node process before any SIP, as the floor under the
 * `wss` figures. A bare `https` server (no softswitch code), then the same server with a `ws`
 * WebSocketServer upgrading every connection, each held by N clients in a child process; the server's
 * RSS, V8 heap and CPU are read before and after (with a forced GC), per connection. The certificate is
 * an ECDSA P-256 pair generated for the run (what the softswitch generates) and an RSA-2048 one.
 * Usage: node dist/bench/tls-floor.js [connections, default 5000]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:https';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { generate } from 'selfsigned';
import { WebSocket, WebSocketServer } from 'ws';
import { fmt, loadAverage } from './lib.js';

type Mode = 'tls' | 'wss';
interface Sample { rss: number; heap: number; cpu: number; held: number }
type ServerMessage = { type: 'port'; port: number } | ({ type: 'sample' } & Sample);
type ClientMessage = { type: 'open'; open: number };

const here = fileURLToPath(import.meta.url);

async function serverMain(mode: Mode, cert: string, key: string): Promise<void> {
  const held: unknown[] = [];
  const server = createServer({ cert, key });
  if (mode === 'tls') server.on('secureConnection', (s) => held.push(s));
  const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => {
    held.push(ws);
    ws.on('message', () => undefined);
  }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  process.send!({ type: 'port', port: typeof address === 'object' && address ? address.port : 0 } satisfies ServerMessage);
  process.on('message', () => {
    (globalThis as { gc?: () => void }).gc?.();
    setTimeout(() => {
      const u = process.memoryUsage();
      const c = process.cpuUsage();
      process.send!({ type: 'sample', rss: u.rss, heap: u.heapUsed, cpu: (c.user + c.system) / 1e6, held: held.length } satisfies ServerMessage);
    }, 500);
  });
}

async function clientMain(mode: Mode, port: number, n: number): Promise<void> {
  const keep: unknown[] = [];
  let open = 0;
  const one = (): Promise<void> => new Promise((resolve) => {
    if (mode === 'tls') {
      const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
        open++;
        resolve();
      });
      s.on('error', () => resolve());
      keep.push(s);
    } else {
      const ws = new WebSocket(`wss://127.0.0.1:${port}`, 'sip', { rejectUnauthorized: false, perMessageDeflate: false });
      ws.on('open', () => {
        open++;
        ws.send('REGISTER sip:example.com SIP/2.0\r\n\r\n');
        resolve();
      });
      ws.on('error', () => resolve());
      keep.push(ws);
    }
  });
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, one));
  process.send!({ type: 'open', open } satisfies ClientMessage);
}

function next<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: { type: string }): void => {
      if (m.type !== type) return;
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before '${type}'`)));
  });
}

async function measureFloor(mode: Mode, pair: { name: string; cert: string; key: string }, n: number): Promise<string> {
  const server = fork(here, ['server', mode], { execArgv: ['--expose-gc'], env: { ...process.env, FLOOR_CERT: pair.cert, FLOOR_KEY: pair.key } });
  try {
    const { port } = await next<{ port: number }>(server, 'port');
    const sample = async (): Promise<Sample> => {
      const s = next<Sample>(server, 'sample');
      server.send('sample');
      return s;
    };
    const before = await sample();
    const client = fork(here, ['client', mode, String(port), String(n)]);
    try {
      const { open } = await next<{ open: number }>(client, 'open');
      await new Promise((r) => setTimeout(r, 1000));
      const after = await sample();
      const per = (bytes: number): string => fmt((bytes / Math.max(1, open)) / 1024, 1);
      return `| ${mode === 'tls' ? 'bare TLS (https server)' : 'WSS (https + ws upgrade)'} | ${pair.name} | ${fmt(open)} | ${per(after.rss - before.rss)} | ${per(after.heap - before.heap)} | ${fmt(((after.cpu - before.cpu) * 1000) / Math.max(1, open), 2)} |`;
    } finally {
      client.kill();
    }
  } finally {
    server.kill();
  }
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 5000);
  if (!Number.isInteger(n) || n < 1 || n > 18_000) throw new TypeError(`connections must be 1…18000 (one process's open files), got ${process.argv[2]}`);
  const ec = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
  const rsaCert = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'rsa', keySize: 2048, algorithm: 'sha256' });
  const pairs = [{ name: 'ECDSA P-256', cert: ec.cert, key: ec.private }, { name: 'RSA-2048', cert: rsaCert.cert, key: rsaCert.private }];
  console.log(`node ${process.version}, ${fmt(n)} idle connections on 127.0.0.1 held by one client process; load average before: ${fmt(loadAverage(), 2)}`);
  console.log('| server | certificate | connections | RSS per connection KiB | V8 heap per connection KiB | server CPU ms per connection (handshake) |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const mode of ['tls', 'wss'] as const) {
    for (const pair of pairs) console.log(await measureFloor(mode, pair, n));
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'server') {
  await serverMain(rest[0] as Mode, process.env.FLOOR_CERT ?? '', process.env.FLOOR_KEY ?? '');
} else if (role === 'client') {
  await clientMain(rest[0] as Mode, Number(rest[1]), Number(rest[2]));
} else {
  await main();
  process.exit(0);
}
