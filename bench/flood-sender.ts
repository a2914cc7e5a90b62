/**
 * The attacker of bench/flood, in its own process: unauthenticated INVITEs over UDP at a fixed rate from
 * `sources` loopback addresses (127.0.2.1 …, from the FIRST-th on), round robin, for `seconds`. Prints
 * `{"sent":N}` at the end.
 * Usage: node dist/bench/flood-sender.js HOST PORT RATE SECONDS SOURCES [FIRST]
 */
import { createSocket, type Socket } from 'node:dgram';

const [host = '127.0.0.1', portText = '5060', rateText = '10000', secondsText = '10', sourcesText = '1', firstText = '0'] = process.argv.slice(2);
const first = Number(firstText);
const port = Number(portText);
const rate = Number(rateText);
const seconds = Number(secondsText);
const sources = Number(sourcesText);
if (![port, rate, seconds, sources].every((n) => Number.isFinite(n) && n > 0) || !(first >= 0) || first + sources > 60_000) {
  throw new TypeError('usage: HOST PORT RATE SECONDS SOURCES [FIRST] (FIRST + SOURCES ≤ 60000)');
}

const sockets: Socket[] = [];
for (let i = first; i < first + sources; i++) {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, `127.0.${2 + Math.floor(i / 250)}.${1 + (i % 250)}`, resolve));
  sockets.push(s);
}

let sent = 0;
const message = (i: number): Buffer => Buffer.from([
  `INVITE sip:+4930123456@example.com SIP/2.0`,
  `Via: SIP/2.0/UDP 127.0.2.1:5060;branch=z9hG4bKflood${i}`,
  'Max-Forwards: 70',
  `From: <sip:alice@example.com>;tag=f${i}`,
  'To: <sip:+4930123456@example.com>',
  `Call-ID: flood-${i}@attacker`,
  'CSeq: 1 INVITE',
  'User-Agent: bench-flood',
  'Content-Length: 0',
  '', '',
].join('\r\n'));

const tickMs = 10;
const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
const end = Date.now() + seconds * 1000;
const started = Date.now();
while (Date.now() < end) {
  const due = Math.min(perTick * Math.floor((Date.now() - started) / tickMs + 1), Math.ceil((rate * seconds)));
  while (sent < due) {
    sockets[sent % sources]!.send(message(sent), port, host);
    sent++;
  }
  await new Promise((r) => setTimeout(r, tickMs));
}
await new Promise((r) => setTimeout(r, 200));
for (const s of sockets) s.close();
process.stdout.write(JSON.stringify({ sent }) + '\n');
