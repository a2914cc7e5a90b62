/**
 * rtpengine node addresses as operators write them (Kamailio's `rtpengine_sock` style):
 * `udp:10.0.0.5:2223`, `udp:10.0.0.5:2223;weight=3`, `udp:10.0.0.5:2223=3`, `udp6:[2001:db8::5]:2223`,
 * or bare `10.0.0.5:2223` / `rtp1.example.net:2223`.
 */
import { isIP } from 'node:net';
import type { RtpengineNodeSpec } from './types.js';

const MAX_WEIGHT = 1000;

/** Parses one node address; a malformed one is a TypeError naming it and what is wrong. */
export function parseRtpengineNode(spec: string): RtpengineNodeSpec {
  if (typeof spec !== 'string') throw new TypeError('rtpengine node: expected a string like "udp:127.0.0.1:2223"');
  const fail = (why: string): never => {
    throw new TypeError(`rtpengine node "${spec}": ${why} (expected udp:host:port[;weight=N])`);
  };
  let rest = spec.trim();
  let weight = 1;
  const params = rest.split(';');
  rest = params.shift()!;
  for (const param of params) {
    const m = /^\s*weight\s*=\s*(\d+)\s*$/i.exec(param);
    if (!m) fail(`unknown parameter "${param}"`);
    weight = Number(m![1]);
  }
  const kamailioWeight = /=(\d+)$/.exec(rest);
  if (kamailioWeight) {
    weight = Number(kamailioWeight[1]);
    rest = rest.slice(0, kamailioWeight.index);
  }
  const scheme = /^(udp6?):/i.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest) || /^(tcp|ws|wss|http|https):/i.test(rest)) fail('only the UDP ng transport is supported');

  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') fail('an IPv6 address in brackets must be followed by :port');
    host = rest.slice(1, close);
    portText = rest.slice(close + 2);
    if (isIP(host) !== 6) fail(`"${host}" is not an IPv6 address`);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon <= 0) fail('missing host or port');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) fail('write an IPv6 address in brackets');
    if (isIP(host) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)) fail(`"${host}" is not a host name or address`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) fail(`"${portText}" is not a port`);
  if (!Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) fail(`weight must be an integer from 0 to ${MAX_WEIGHT}`);
  return { host, port: Number(portText), weight };
}

/** `udp:host:port`, the name a node goes by in logs, stats and errors. */
export function rtpengineNodeId(node: Pick<RtpengineNodeSpec, 'host' | 'port'>): string {
  return `udp:${isIP(node.host) === 6 ? `[${node.host}]` : node.host}:${node.port}`;
}
