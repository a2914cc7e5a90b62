/**
 * A client of one rtpengine's ng control port over UDP. A message is `cookie SP bencoded-dict`; the reply
 * carries the same cookie. UDP loses datagrams, so a command is retransmitted with the same cookie until
 * it is answered or its time is up: rtpengine keeps a cache of recent cookies and answers a retransmission
 * from it instead of running the command twice (an offer retransmitted with a new cookie would allocate
 * ports again).
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { silentLogger, type Logger } from '../../src/log/index.js';
import { decode, encode } from './bencode.js';
import { rtpengineNodeId } from './node-spec.js';
import { RtpengineError } from './rtpengine-error.js';
import type { BencodeValue, NgClientOptions, NgCommandOptions, NgReply, NgRequest } from './types.js';

const DEFAULT_TIMEOUT_MS = 3000;
const DEFAULT_RETRANSMIT_MS = 500;
/** Retransmission intervals double up to this. */
const MAX_RETRANSMIT_MS = 4000;
/** The largest UDP payload over IPv4. */
const MAX_DATAGRAM = 65507;

interface Pending {
  cookie: string;
  command: string;
  message: Buffer;
  resolve: (reply: NgReply) => void;
  reject: (err: Error) => void;
  deadline: NodeJS.Timeout;
  retransmit: NodeJS.Timeout | undefined;
  sends: number;
}

interface Target {
  socket: Socket;
  address: string;
}

export class NgClient {
  /** `udp:host:port`, as in logs and errors. */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly retransmitMs: number;
  private readonly pending = new Map<string, Pending>();
  private target: Promise<Target> | undefined;
  private socket: Socket | undefined;
  private closed = false;

  constructor(options: NgClientOptions) {
    if (typeof options.host !== 'string' || options.host === '') throw new TypeError('NgClient: host is required');
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new TypeError(`NgClient: port ${String(options.port)} is not a UDP port`);
    }
    this.host = options.host;
    this.port = options.port;
    this.id = rtpengineNodeId(options);
    this.log = options.logger ?? silentLogger();
    this.timeoutMs = positive(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.retransmitMs = positive(options.retransmitMs, DEFAULT_RETRANSMIT_MS, 'retransmitMs');
  }

  /** Commands sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends `dict` and resolves with rtpengine's reply. Rejects with RtpengineError: RTPENGINE_ERR_TIMEOUT
   * when no reply came within the timeout, RTPENGINE_ERR_COMMAND (message = rtpengine's error-reason)
   * when the reply says `result: error`.
   */
  async command(dict: NgRequest, options: NgCommandOptions = {}): Promise<NgReply> {
    if (this.closed) throw new RtpengineError('RTPENGINE_ERR_CLOSED', `ng client ${this.id} is closed`, { node: this.id });
    if (typeof dict?.command !== 'string' || dict.command === '') throw new TypeError('ng command: "command" must be a non-empty string');
    const timeoutMs = positive(options.timeoutMs, this.timeoutMs, 'timeoutMs');
    const started = Date.now();
    const target = await this.resolveTarget();
    if (this.closed) throw new RtpengineError('RTPENGINE_ERR_CLOSED', `ng client ${this.id} is closed`, { node: this.id });

    let cookie = randomBytes(8).toString('hex');
    while (this.pending.has(cookie)) cookie = randomBytes(8).toString('hex');
    const message = Buffer.concat([Buffer.from(`${cookie} `, 'latin1'), encode(dict)]);
    if (message.length > MAX_DATAGRAM) {
      throw new RtpengineError('RTPENGINE_ERR_SEND', `ng ${dict.command}: message of ${message.length} bytes does not fit a datagram`, { node: this.id });
    }
    const remaining = Math.max(1, timeoutMs - (Date.now() - started));

    return new Promise<NgReply>((resolve, reject) => {
      const p: Pending = {
        cookie,
        command: dict.command,
        message,
        resolve,
        reject,
        sends: 0,
        retransmit: undefined,
        deadline: setTimeout(() => {
          this.settle(p);
          reject(new RtpengineError('RTPENGINE_ERR_TIMEOUT', `rtpengine ${this.id} did not answer "${p.command}" within ${timeoutMs} ms (${p.sends} sends)`, { node: this.id }));
        }, remaining),
      };
      this.pending.set(cookie, p);
      const send = (interval: number): void => {
        this.send(target, p);
        p.retransmit = setTimeout(() => send(Math.min(interval * 2, MAX_RETRANSMIT_MS)), interval);
      };
      send(this.retransmitMs);
    });
  }

  /** Rejects every pending command with RTPENGINE_ERR_CLOSED and releases the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.pending.values()]) {
      this.settle(p);
      p.reject(new RtpengineError('RTPENGINE_ERR_CLOSED', `ng client ${this.id} closed while "${p.command}" was pending`, { node: this.id }));
    }
    this.socket?.close();
    this.socket = undefined;
  }

  private resolveTarget(): Promise<Target> {
    this.target ??= this.openSocket().catch((err: unknown) => {
      this.target = undefined; // a failed lookup is retried by the next command
      throw new RtpengineError('RTPENGINE_ERR_SEND', `cannot resolve rtpengine ${this.id}: ${(err as Error).message}`, { node: this.id, cause: err });
    });
    return this.target;
  }

  private async openSocket(): Promise<Target> {
    const family = isIP(this.host);
    const address = family !== 0 ? this.host : (await lookup(this.host)).address;
    const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
    socket.on('message', (msg, rinfo) => {
      // replies come from the address we sent to; anything else is not rtpengine's
      if (rinfo.port !== this.port || rinfo.address !== address) {
        this.log.debug({ node: this.id, from: `${rinfo.address}:${rinfo.port}` }, 'ng datagram from an unexpected source dropped');
        return;
      }
      this.onMessage(msg);
    });
    socket.on('error', (err) => this.log.warn({ node: this.id, err: err.message }, 'ng socket error'));
    // an idle client must not keep the process alive; pending commands hold their own timers
    socket.unref();
    if (this.closed) socket.close();
    else this.socket = socket;
    return { socket, address };
  }

  private send(target: Target, p: Pending): void {
    p.sends++;
    if (p.sends > 1) this.log.debug({ node: this.id, command: p.command, cookie: p.cookie, sends: p.sends }, 'ng retransmission');
    target.socket.send(p.message, this.port, target.address, (err) => {
      if (err && this.pending.get(p.cookie) === p) this.log.warn({ node: this.id, command: p.command, err: err.message }, 'ng send failed');
    });
  }

  private onMessage(msg: Buffer): void {
    const space = msg.indexOf(0x20);
    if (space <= 0) {
      this.log.warn({ node: this.id, bytes: msg.length }, 'ng reply without a cookie dropped');
      return;
    }
    const cookie = msg.toString('latin1', 0, space);
    const p = this.pending.get(cookie);
    if (!p) {
      // the answer to a retransmission of a command already answered, or to a command that timed out
      this.log.debug({ node: this.id, cookie }, 'ng reply for no pending command');
      return;
    }
    this.settle(p);
    let reply: BencodeValue;
    try {
      reply = decode(msg.subarray(space + 1));
    } catch (err) {
      p.reject(new RtpengineError('RTPENGINE_ERR_REPLY', `rtpengine ${this.id}: malformed reply to "${p.command}": ${(err as Error).message}`, { node: this.id, cause: err }));
      return;
    }
    if (!isDict(reply) || typeof reply.result !== 'string') {
      p.reject(new RtpengineError('RTPENGINE_ERR_REPLY', `rtpengine ${this.id}: reply to "${p.command}" has no result`, { node: this.id }));
      return;
    }
    if (reply.result === 'error') {
      const reason = typeof reply['error-reason'] === 'string' ? reply['error-reason'] : 'unknown error';
      p.reject(new RtpengineError('RTPENGINE_ERR_COMMAND', reason, { node: this.id, reason }));
      return;
    }
    if (typeof reply.warning === 'string') this.log.debug({ node: this.id, command: p.command, warning: reply.warning }, 'rtpengine warning');
    p.resolve(reply as NgReply);
  }

  private settle(p: Pending): void {
    clearTimeout(p.deadline);
    if (p.retransmit) clearTimeout(p.retransmit);
    this.pending.delete(p.cookie);
  }
}

function isDict(v: BencodeValue): v is Record<string, BencodeValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`NgClient: ${name} must be a positive number of milliseconds`);
  return value;
}
