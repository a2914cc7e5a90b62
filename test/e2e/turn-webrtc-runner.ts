/**
 * Two libwebrtc peers (`@roamhq/wrtc`) that may only use relay candidates (`iceTransportPolicy: 'relay'`) and have
 * the embedded TURN server as their only ICE server: they open a data channel and exchange a message each way.
 * Run by turn-server.test.ts inside a loopback-only network namespace (`ip netns exec NS node
 * dist/test/e2e/turn-webrtc-runner.js`), so both relays are on 127.0.0.1 (turn.allowedPeers lets it through)
 * and no packet can leave the machine. It prints what it observed as one line `TURN-WEBRTC-RESULT {json}` and
 * exits; the test asserts. It kills itself after TURN_WEBRTC_TIMEOUT_MS whatever happens.
 */
import { parseCidr } from '../../platform/config/config.js';
import { silentLogger } from '../../src/log/index.js';
import { TurnCredentials } from '../../turn/credentials.js';
import { EmbeddedTurnServer, type TurnServerStats } from '../../turn/server.js';
import { freePort } from '../../support/tools.js';
import { installWrtc } from '../helpers/webrtc-phone.js';

export interface TurnWebrtcResult {
  /** What the answerer received, and what the offerer received back. */
  received: string[];
  /** Candidate types each peer gathered. */
  gathered: { offerer: string[]; answerer: string[] };
  /** The offerer's nominated pair: candidate types and addresses. */
  pair?: { local: string; remote: string; localAddress: string; remoteAddress: string; bytesSent: number };
  server: TurnServerStats;
  relayPorts: { min: number; max: number };
  error?: string;
}

const TIMEOUT_MS = Number(process.env.TURN_WEBRTC_TIMEOUT_MS ?? 20_000);

interface DataChannel {
  onopen: (() => void) | null;
  onmessage: ((event: { data: string }) => void) | null;
  send(data: string): void;
}
interface PeerConnection {
  onicecandidate: ((event: { candidate: { candidate: string } | null }) => void) | null;
  ondatachannel: ((event: { channel: DataChannel }) => void) | null;
  createDataChannel(label: string): DataChannel;
  createOffer(): Promise<unknown>;
  createAnswer(): Promise<unknown>;
  setLocalDescription(d: unknown): Promise<void>;
  setRemoteDescription(d: unknown): Promise<void>;
  addIceCandidate(c: unknown): Promise<void>;
  readonly localDescription: unknown;
  getStats(): Promise<{ forEach(fn: (r: Record<string, unknown>) => void): void }>;
  close(): void;
}

function report(result: TurnWebrtcResult): never {
  process.stdout.write(`TURN-WEBRTC-RESULT ${JSON.stringify(result)}\n`);
  // libwebrtc's threads keep the process alive: exit explicitly (as media-runner.ts does)
  process.exit(0);
}

async function main(): Promise<void> {
  const relayPorts = { min: 50000, max: 50099 };
  const credentials = new TurnCredentials(['turn-webrtc-runner-secret-0123456789abcdef']);
  const server = new EmbeddedTurnServer({
    listen: { address: '127.0.0.1', port: await freePort() },
    relayAddress: '127.0.0.1',
    relayPorts,
    realm: 'turn.test.invalid',
    credentials,
    allowedPeers: [parseCidr('127.0.0.1')],
    userQuota: 12,
    totalQuota: 1200,
    maxBps: 375_000,
    logger: silentLogger(),
  });
  await server.start();
  const result: TurnWebrtcResult = { received: [], gathered: { offerer: [], answerer: [] }, server: server.stats(), relayPorts };
  const timer = setTimeout(() => report({ ...result, server: server.stats(), error: `no message each way within ${TIMEOUT_MS} ms` }), TIMEOUT_MS);
  try {
    const wrtc = installWrtc() as unknown as { RTCPeerConnection: new (config: unknown) => PeerConnection };
    const { port } = server.address();
    const config = (user: string) => {
      const c = credentials.issue(user, 600);
      return { iceServers: [{ urls: `turn:127.0.0.1:${port}?transport=udp`, username: c.username, credential: c.credential }], iceTransportPolicy: 'relay' };
    };
    const offerer = new wrtc.RTCPeerConnection(config('alice'));
    const answerer = new wrtc.RTCPeerConnection(config('bob'));
    const trickle = (from: PeerConnection, to: PeerConnection, seen: string[]): void => {
      from.onicecandidate = (e) => {
        if (e.candidate === null) return;
        seen.push(/ typ (\w+)/.exec(e.candidate.candidate)?.[1] ?? 'unknown');
        void to.addIceCandidate(e.candidate);
      };
    };
    trickle(offerer, answerer, result.gathered.offerer);
    trickle(answerer, offerer, result.gathered.answerer);
    const done = new Promise<void>((resolve) => {
      answerer.ondatachannel = ({ channel }) => {
        channel.onmessage = ({ data }) => {
          result.received.push(data);
          channel.send(`re: ${data}`);
        };
      };
      const channel = offerer.createDataChannel('chat');
      channel.onopen = () => channel.send('hello through the relay');
      channel.onmessage = ({ data }) => {
        result.received.push(data);
        resolve();
      };
    });
    await offerer.setLocalDescription(await offerer.createOffer());
    await answerer.setRemoteDescription(offerer.localDescription);
    await answerer.setLocalDescription(await answerer.createAnswer());
    await offerer.setRemoteDescription(answerer.localDescription);
    await done;
    const stats = await offerer.getStats();
    const byId = new Map<string, Record<string, unknown>>();
    stats.forEach((r) => byId.set(r.id as string, r));
    for (const r of byId.values()) {
      if (r.type !== 'candidate-pair' || r.nominated !== true) continue;
      const local = byId.get(r.localCandidateId as string) ?? {};
      const remote = byId.get(r.remoteCandidateId as string) ?? {};
      result.pair = {
        local: String(local.candidateType), remote: String(remote.candidateType),
        localAddress: `${String(local.address ?? local.ip)}:${String(local.port)}`, remoteAddress: `${String(remote.address ?? remote.ip)}:${String(remote.port)}`,
        bytesSent: Number(r.bytesSent ?? 0),
      };
    }
    result.server = server.stats();
    offerer.close();
    answerer.close();
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
  }
  clearTimeout(timer);
  await server.stop();
  report(result);
}

void main();
