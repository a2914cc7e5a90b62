/**
 * bench/parser: messages per second for parse + serialize on one core.
 *  - "round trip": parse, then serialize unmodified (byte-exact copy).
 *  - "proxy forward": parse, then what a stateful proxy does before sending on (add a Via, decrement
 *    Max-Forwards, add a Record-Route, read the transaction keys), then serialize.
 * Usage: node dist/bench/parser.js [seconds per case, default 3]
 */
import { parseMessage, serializeMessage, type SipMessage } from '../src/sip/index.js';
import { REGISTER_200, SDP_BYTES, WEBRTC_INVITE } from './messages.js';

const seconds = Number(process.argv[2] ?? 3);

function roundTrip(buf: Buffer): number {
  return serializeMessage(parseMessage(buf)).length;
}

function proxyForward(buf: Buffer): number {
  const m: SipMessage = parseMessage(buf);
  // transaction keys
  const key = m.topVia!.branch!.length + m.cseq!.method.length + m.callId!.length + (m.from?.tag?.length ?? 0);
  m.prepend('Via', 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-proxy-0123456789');
  m.set('Max-Forwards', String(m.maxForwards! - 1));
  m.prepend('Record-Route', '<sip:127.0.0.1:5060;transport=udp;lr>');
  return serializeMessage(m).length + key;
}

function run(name: string, fn: (b: Buffer) => number, buf: Buffer): { name: string; perSecond: number; usPerMsg: number } {
  // warm-up so the JIT has settled
  const warmEnd = performance.now() + 500;
  let sink = 0;
  while (performance.now() < warmEnd) for (let i = 0; i < 1000; i++) sink += fn(buf);
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) sink += fn(buf);
    n += 1000;
  }
  const elapsed = (performance.now() - start) / 1000;
  if (sink === 42) console.log('');
  return { name, perSecond: Math.round(n / elapsed), usPerMsg: (elapsed * 1e6) / n };
}

const results = [
  run(`INVITE (${WEBRTC_INVITE.length} B, SDP ${SDP_BYTES} B) round trip`, roundTrip, WEBRTC_INVITE),
  run('INVITE proxy forward (Via + Max-Forwards + Record-Route)', proxyForward, WEBRTC_INVITE),
  run(`200 OK to REGISTER (${REGISTER_200.length} B) round trip`, roundTrip, REGISTER_200),
  run('200 OK to REGISTER proxy forward', proxyForward, REGISTER_200),
];

console.log(`node ${process.version}, ${seconds} s per case, one core`);
console.log('| case | messages/s | µs/message |');
console.log('|---|---:|---:|');
for (const r of results) console.log(`| ${r.name} | ${r.perSecond.toLocaleString('en-US')} | ${r.usPerMsg.toFixed(2)} |`);
