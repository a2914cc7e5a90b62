/**
 * Types of the rtpengine control layer: bencode values, ng protocol dictionaries, the ng client and the
 * node pool. Types only, so the gateway, the proxy and test fakes can depend on them without the classes.
 */
import type { Logger } from '../../src/log/index.js';

// ---- bencode ---------------------------------------------------------------------------------------

/** What `decode` returns. Byte strings are `string` (UTF-8) or `Buffer` (see `BencodeDecodeOptions`). */
export type BencodeValue = string | Buffer | number | bigint | BencodeValue[] | BencodeDict;
export interface BencodeDict {
  [key: string]: BencodeValue;
}

/** What `encode` accepts. Dictionary entries whose value is `undefined` are left out. */
export type BencodeInput =
  | string
  | Uint8Array
  | number
  | bigint
  | readonly BencodeInput[]
  | { readonly [key: string]: BencodeInput | undefined };

export interface BencodeDecodeOptions {
  /**
   * `'auto'` (default): a byte string that is valid UTF-8 becomes a `string`, any other a `Buffer`.
   * `'buffer'`: every byte string value becomes a `Buffer` (dictionary keys stay strings).
   */
  strings?: 'auto' | 'buffer';
  /** Deepest nesting of lists and dictionaries accepted; default 64. */
  maxDepth?: number;
}

// ---- ng protocol -----------------------------------------------------------------------------------

/** An ng request: `command` plus the command's keys; `undefined` entries are not sent. */
export type NgDict = { readonly [key: string]: BencodeInput | undefined };
export type NgRequest = NgDict & { readonly command: string };

/** An ng reply: `result` is `ok` or `pong` (errors are thrown, never returned); `warning` may be set. */
export type NgReply = BencodeDict & { result: string };
/** The reply to `offer` / `answer`: `sdp` is the rewritten body. */
export type NgSdpReply = NgReply & { sdp: string };

/** Keys common to the commands that name a call (`query`, `start recording` …). */
export type NgCallRequest = NgDict & {
  readonly 'call-id': string;
  readonly 'from-tag'?: string | undefined;
  readonly 'to-tag'?: string | undefined;
  readonly 'via-branch'?: string | undefined;
};
export type NgOfferRequest = NgDict & {
  readonly 'call-id': string;
  readonly 'from-tag': string;
  readonly sdp: string;
  readonly 'via-branch'?: string | undefined;
};
export type NgAnswerRequest = NgOfferRequest & { readonly 'to-tag': string };
export type NgDeleteRequest = NgCallRequest & { readonly 'delete delay'?: number | undefined };

export interface NgClientOptions {
  host: string;
  port: number;
  logger?: Logger | undefined;
  /** Overall time a command may take, retransmissions included; default 3000 ms. */
  timeoutMs?: number | undefined;
  /** First retransmission after this long, then doubling (500 ms, 1 s, 2 s …); default 500 ms. */
  retransmitMs?: number | undefined;
}

export interface NgCommandOptions {
  /** Overrides the client's `timeoutMs` for this command. */
  timeoutMs?: number | undefined;
}

// ---- pool ------------------------------------------------------------------------------------------

/** One rtpengine control address, as parsed from `udp:host:port;weight=N`. */
export interface RtpengineNodeSpec {
  host: string;
  port: number;
  /** Share of new calls; 0 drains the node (it keeps its calls, gets no new ones). Default 1. */
  weight: number;
}

export interface RtpengineNodeStats {
  /** `udp:host:port`, as in logs. */
  id: string;
  host: string;
  port: number;
  weight: number;
  up: boolean;
  /** Failures (timeouts, overload answers, failed pings) since the pool started. */
  failures: number;
  /** Round trip of the last successful command or ping, in milliseconds. */
  lastLatencyMs: number | undefined;
  /** While down: when the node is tried again even without a successful ping (ms since the epoch). */
  downUntil: number | undefined;
  lastError: string | undefined;
  /** Calls currently stuck to this node. */
  calls: number;
}

export interface RtpenginePoolOptions {
  /** `udp:host:port`, `udp:host:port;weight=N`, `host:port`, or parsed specs. May be empty. */
  nodes: ReadonlyArray<string | RtpengineNodeSpec>;
  logger: Logger;
  /** Per-node command timeout (retransmissions included); default 3000 ms. */
  timeoutMs?: number | undefined;
  /** First retransmission interval; default 500 ms. */
  retransmitMs?: number | undefined;
  /** How long a failed node is left out before it is tried again; default 30 000 ms. */
  downtimeMs?: number | undefined;
  /** Health-check ping interval; default 10 000 ms; 0 disables the timer. */
  pingIntervalMs?: number | undefined;
  /** A call's node is forgotten this long after its last command; default 12 h. */
  stickyTtlMs?: number | undefined;
  /** Uniform random numbers in [0, 1) for the weighted choice; default Math.random. */
  random?: (() => number) | undefined;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: (() => number) | undefined;
}
