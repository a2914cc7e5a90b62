/**
 * Runs inside a loopback-only network namespace (see rfc4475.test.ts): starts a softswitch on
 * udp:127.0.0.1:5080, sends every RFC 4475 message as one datagram, and prints one JSON line with what
 * came back for each and every destination the server sent to. Responses follow RFC 3261 §18.2.2 to the
 * Via's sent-by port (5060 by default) at the `received` address, so the runner listens on the ports the
 * messages' Vias name.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSoftswitch } from '../../server/app.js';
import { validate } from '../../platform/config/index.js';
import { silentLogger } from '../../src/log/index.js';
import type { Destination } from '../../src/transport/types.js';
import { loadTortureCases } from '../helpers/rfc4475.js';

export interface RunnerResult {
  answers: Record<string, { status: number; reason: string } | null>;
  sentTo: string[];
  aliveAfter: boolean;
}

const SERVER_PORT = 5080;
const LISTEN_PORTS = [5050, 5060, 5061];
const WAIT_MS = Number(process.env.RFC4475_WAIT_MS ?? 400);

async function main(): Promise<void> {
  const config = validate({
    // The domains the RFC's messages use, so they meet the policy of a proxy serving them: challenges
    // (401/407) for requests from its users, answers for the server itself.
    sip: { listen: [`udp:127.0.0.1:${SERVER_PORT}`], domain: ['example.com', 'example.org', 'example.net', 'company.com', 'chair-dnrc.example.com', 'registrar.example.com'] },
    dataDir: mkdtempSync(join(tmpdir(), 'softswitch-4475-')),
    http: { listen: '127.0.0.1:0' },
    log: { level: 'silent' },
  });
  const server = await createSoftswitch(config, silentLogger());
  const sentTo: string[] = [];
  const transport = server.stack.transport;
  const send = transport.send.bind(transport);
  transport.send = (data: Buffer, d: Destination) => {
    sentTo.push(`${d.protocol}:${d.address}:${d.port}`);
    return send(data, d);
  };
  await server.start();

  let pending: ((text: string) => void) | undefined;
  const sockets: Socket[] = [];
  for (const port of LISTEN_PORTS) {
    const s = createSocket('udp4');
    s.on('message', (m) => pending?.(m.toString('latin1')));
    await new Promise<void>((r) => s.bind(port, '127.0.0.1', () => r()));
    sockets.push(s);
  }
  const sender = sockets[1]!;
  const exchange = (data: Buffer): Promise<string | null> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending = undefined;
        resolve(null);
      }, WAIT_MS);
      const callId = callIdOf(data.toString('latin1'));
      pending = (text) => {
        if (/^SIP\/2\.0 1\d\d/.test(text)) return; // provisional: wait for the final answer
        if (callIdOf(text) !== callId) return; // a retransmission for an earlier message (no ACK is ever sent)
        clearTimeout(timer);
        pending = undefined;
        resolve(text);
      };
      sender.send(data, SERVER_PORT, '127.0.0.1');
    });

  const answers: RunnerResult['answers'] = {};
  for (const c of loadTortureCases()) {
    const text = await exchange(c.data);
    const m = text === null ? null : /^SIP\/2\.0 (\d{3}) ?([^\r\n]*)/.exec(text);
    answers[c.name] = m ? { status: Number(m[1]), reason: m[2]! } : null;
    // let any second response (a retransmission or a stray) surface before the next message
    await new Promise((r) => setTimeout(r, 20));
  }
  const ping = Buffer.from(
    `OPTIONS sip:127.0.0.1:${SERVER_PORT} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKalive\r\nMax-Forwards: 70\r\n` +
      'From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: alive-check\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n',
  );
  const alive = await exchange(ping);
  for (const s of sockets) s.close();
  await server.stop();
  const result: RunnerResult = { answers, sentTo, aliveAfter: alive !== null && alive.startsWith('SIP/2.0 200') };
  process.stdout.write(JSON.stringify(result) + '\n');
}

function callIdOf(text: string): string | undefined {
  const head = text.slice(0, text.indexOf('\r\n\r\n') >>> 0);
  return /^(?:call-id|i)[ \t]*:[ \t]*(.*)$/im.exec(head)?.[1]?.trim();
}

main().catch((err: Error) => {
  process.stderr.write(`rfc4475 runner failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
