/**
 * The dialog tracker: one record per call the proxy forwards, like Kamailio's dialog module. The routing
 * policy creates a dialog when it forwards an initial INVITE and reports what the proxy sees (a ringing
 * provisional, the 2xx, the final failure, the BYE); the tracker keeps the call's facts (caller, callee,
 * who answered, backend, media relay, times, end cause, final code), ends calls whose BYE never comes
 * (`dialog.maxDuration`), counts active calls per user and per backend, and tells its subscribers
 * (`created`, `early`, `confirmed`, `ended`): the media gateway releases the relay, the balancer's
 * least-calls counter goes down, call history writes the record.
 *
 * A dialog is known by its Call-ID: a forked INVITE makes several early dialogs at the callee's side, but
 * one call here; the one a 2xx picks is the call's dialog (RFC 3261 §12.1, §16.7 step 10). One process
 * holds a dialog (the worker that forwarded its INVITE, its `owner`); a BYE that reaches another worker is
 * handed to the holder through `DialogRemote`.
 */
import { randomUUID } from 'node:crypto';
import { type Logger, categoryLogger } from '../log/index.js';
import { type Timers, type TimerHandle, realTimers } from '../transaction/timers.js';
import type {
  DialogAnswerer, DialogBackend, DialogEnd, DialogEvents, DialogHangup, DialogInit, DialogPeers, DialogLegs, DialogMedia, DialogRemote, DialogSnapshot, DialogState,
  HangupOutcome,
} from './types.js';

/**
 * A BYE for a dialog not held here is remembered this long: the dialog may be on its way here (a rolling
 * restart's predecessor hands its calls over), and is ended as it arrives.
 */
const UNMATCHED_END_MS = 30_000;
/** At most this many such BYEs are remembered (a flood of BYEs for made-up dialogs costs no more). */
const UNMATCHED_END_MAX = 10_000;

/** Kamailio's default `default_timeout` is 12 h; a phone call of ours ends after 4 h without a BYE. */
export const DEFAULT_MAX_DURATION_MS = 4 * 3600_000;

export interface DialogTrackerOptions {
  logger: Logger;
  /** This process's worker slot (0 without a cluster): recorded as the dialogs' owner. */
  owner?: number;
  /** A dialog still up this long after its INVITE is ended with cause `timeout` (default 4 h). */
  maxDurationMs?: number;
  timers?: Timers;
  now?: () => number;
}

/** One call. Its fields are the tracker's to change; `media` belongs to the media relay hook. */
export class Dialog implements DialogSnapshot {
  readonly id: string;
  readonly owner: number;
  readonly callId: string;
  readonly fromTag: string;
  readonly caller: DialogSnapshot['caller'];
  readonly callee: DialogSnapshot['callee'];
  readonly direction: DialogSnapshot['direction'];
  readonly createdAt: number;
  state: DialogState = 'created';
  toTag?: string | undefined;
  answeredBy?: DialogAnswerer | undefined;
  backend?: DialogBackend | undefined;
  ringingAt?: number | undefined;
  answeredAt?: number | undefined;
  endedAt?: number | undefined;
  endCause?: DialogSnapshot['endCause'];
  hangupBy?: DialogSnapshot['hangupBy'];
  finalCode?: number | undefined;
  finalReason?: string | undefined;
  legs?: DialogLegs | undefined;
  /** The relay's state for this call; undefined while its media goes end to end. */
  media: DialogMedia | undefined;
  /** @internal the maxDuration timer. */
  timer: TimerHandle | undefined;
  /** @internal the users and backend it was counted under. */
  counted: string[] = [];

  constructor(s: DialogInit & { id: string; owner: number; createdAt: number }) {
    this.id = s.id;
    this.owner = s.owner;
    this.callId = s.callId;
    this.fromTag = s.fromTag;
    this.caller = s.caller;
    this.callee = s.callee;
    this.direction = s.direction;
    this.createdAt = s.createdAt;
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  get mediaRelayed(): boolean {
    return this.media !== undefined;
  }

  get mediaNode(): string | undefined {
    return this.media?.node;
  }

  /** Plain JSON: what is persisted and what the subscribers may keep. */
  snapshot(): DialogSnapshot {
    return snapshotOf(this);
  }
}

/** A dialog's facts as plain JSON (without the tracker's timer and the media hook's live state). */
export function snapshotOf(d: Readonly<DialogSnapshot>): DialogSnapshot {
  return {
    id: d.id, owner: d.owner, callId: d.callId, fromTag: d.fromTag, toTag: d.toTag,
    caller: d.caller, callee: d.callee, direction: d.direction, state: d.state,
    answeredBy: d.answeredBy, backend: d.backend, mediaNode: d.mediaNode, mediaRelayed: d.mediaRelayed,
    createdAt: d.createdAt, ringingAt: d.ringingAt, answeredAt: d.answeredAt, endedAt: d.endedAt,
    endCause: d.endCause, hangupBy: d.hangupBy, finalCode: d.finalCode, finalReason: d.finalReason, legs: d.legs,
  };
}

type Listener<A extends unknown[]> = (...args: A) => void;

export class DialogTracker {
  private readonly byCallId = new Map<string, Dialog>();
  /** Active dialogs per user (user@domain, caller or callee) and per backend URI (`backend:` prefix). */
  private readonly counts = new Map<string, number>();
  private readonly listeners: { [K in keyof DialogEvents]?: Array<Listener<DialogEvents[K]>> } = {};
  private readonly log: Logger;
  private readonly owner: number;
  private readonly maxDurationMs: number;
  private readonly timers: Timers;
  private readonly now: () => number;
  private remote: DialogRemote | undefined;
  private hangup: DialogHangup | undefined;
  private peers: DialogPeers | undefined;
  /** BYEs for dialogs not held here, by Call-ID, oldest first (see UNMATCHED_END_MS). */
  private readonly unmatched = new Map<string, { fromTag: string | undefined; end: DialogEnd; at: number }>();
  private stopped = false;

  constructor(options: DialogTrackerOptions) {
    this.log = categoryLogger(options.logger, 'dialog');
    this.owner = options.owner ?? 0;
    this.maxDurationMs = options.maxDurationMs ?? DEFAULT_MAX_DURATION_MS;
    if (!Number.isFinite(this.maxDurationMs) || this.maxDurationMs <= 0) throw new TypeError(`maxDurationMs must be a positive number, got ${this.maxDurationMs}`);
    this.timers = options.timers ?? realTimers;
    this.now = options.now ?? Date.now;
  }

  on<K extends keyof DialogEvents>(event: K, listener: Listener<DialogEvents[K]>): this {
    (this.listeners[event] ??= [] as never as Array<Listener<DialogEvents[K]>>).push(listener);
    return this;
  }

  /** Where BYEs for dialogs held by another worker go (the cluster); without it they are ignored. */
  setRemote(remote: DialogRemote): void {
    this.remote = remote;
  }

  /** What ends a call from outside (the proxy): `hangUp` asks it. */
  setHangup(hangup: DialogHangup): void {
    this.hangup = hangup;
  }

  /** The other workers of the cluster, which `listAll` and `hangUpAnywhere` ask too. */
  setPeers(peers: DialogPeers): void {
    this.peers = peers;
  }

  /**
   * The active dialogs of the whole node, oldest first: those held here and those the other workers answer
   * within `timeoutMs` (`missing`: the workers that did not). Without a cluster, this process's.
   */
  async listAll(timeoutMs: number): Promise<{ dialogs: DialogSnapshot[]; missing: number }> {
    const own = this.list().map((d) => d.snapshot());
    if (this.peers === undefined) return { dialogs: own, missing: 0 };
    const others = await this.peers.list(timeoutMs);
    const dialogs = [...own, ...others.dialogs].sort((a, b) => a.createdAt - b.createdAt);
    return { dialogs, missing: others.missing };
  }

  /** `hangUp` here, else at the worker that holds the dialog (the others are asked; `missing`: those silent within `timeoutMs`). */
  async hangUpAnywhere(id: string, timeoutMs: number): Promise<{ result: HangupOutcome; missing: number }> {
    const here = this.hangUp(id);
    if (here !== 'unknown' || this.peers === undefined) return { result: here, missing: 0 };
    const there = await this.peers.hangUp(id, timeoutMs);
    if (there.result !== 'unknown') this.log.info({ id, result: there.result }, 'call hung up at the worker that holds it');
    return there;
  }

  /** Dialogs not ended yet. */
  get active(): number {
    return this.byCallId.size;
  }

  /** Active dialogs of a user of ours (user@domain, as caller or callee). */
  activeForUser(aor: string): number {
    return this.counts.get(aor.toLowerCase()) ?? 0;
  }

  /** Active (answered) dialogs through a backend URI. */
  activeAtBackend(uri: string): number {
    return this.counts.get(`backend:${uri}`) ?? 0;
  }

  /**
   * For /health: active dialogs by state, per backend, and the users with the most active calls (at most
   * `topUsers` of them, most first: a full list would grow with the load).
   */
  stats(topUsers = 20): { active: number; early: number; confirmed: number; backends: Record<string, number>; users: Record<string, number> } {
    let early = 0;
    let confirmed = 0;
    for (const d of this.byCallId.values()) {
      if (d.state === 'early') early++;
      else if (d.state === 'confirmed') confirmed++;
    }
    const backends: Record<string, number> = {};
    const users: Array<[string, number]> = [];
    for (const [key, n] of this.counts) {
      if (key.startsWith('backend:')) backends[key.slice(8)] = n;
      else users.push([key, n]);
    }
    users.sort((a, b) => b[1] - a[1]);
    return { active: this.byCallId.size, early, confirmed, backends, users: Object.fromEntries(users.slice(0, topUsers)) };
  }

  /** The dialogs not ended yet, oldest first (the admin API's active calls). */
  list(): Dialog[] {
    return [...this.byCallId.values()];
  }

  get(callId: string): Dialog | undefined {
    return this.byCallId.get(callId);
  }

  /** A dialog not ended yet by its id (the admin API's; a scan: it is asked once per hang-up). */
  byId(id: string): Dialog | undefined {
    for (const d of this.byCallId.values()) if (d.id === id) return d;
    return undefined;
  }

  /**
   * An in-dialog request passed the proxy: its CSeq is the highest its sender used so far (RFC 3261 §12.2.1.1:
   * "strictly monotonically increasing"), and a request the proxy sends as that side must go above it.
   */
  requestSeen(callId: string, fromTag: string | undefined, cseq: number): void {
    if (!Number.isInteger(cseq)) return;
    const dialog = this.byCallId.get(callId);
    if (dialog === undefined) return this.remote?.seen?.(callId, fromTag, cseq);
    const legs = dialog.legs;
    if (legs === undefined) return;
    const leg = fromTag === dialog.fromTag ? legs.caller : legs.callee;
    if (cseq <= leg.cseq) return;
    leg.cseq = cseq;
    this.emit('updated', dialog);
  }

  /** The holder's half of `DialogRemote.seen`: false when the dialog is not held here either. */
  requestSeenRemotely(callId: string, fromTag: string | undefined, cseq: number): boolean {
    if (!this.byCallId.has(callId)) return false;
    this.requestSeen(callId, fromTag, cseq);
    return true;
  }

  /**
   * Ends the call held here from outside, like Kamailio's dlg_end_dlg: an answered call gets a BYE to each
   * side and ends now (`bye`, hung up by the `system`, so history, media and presence follow as for any
   * BYE); a ringing one has its branches CANCELled and ends when the caller's 487 goes up.
   */
  hangUp(id: string): HangupOutcome {
    const dialog = this.byId(id);
    if (dialog === undefined) return 'unknown';
    const result = this.hangup?.hangUp(dialog);
    if (result === undefined) return 'unreachable';
    this.log.info({ callId: dialog.callId, state: dialog.state, result }, 'call hung up by the administrator');
    if (result === 'bye') this.end(dialog, { cause: 'bye', hangupBy: 'system' });
    return result;
  }

  /**
   * The routing policy forwards an initial INVITE. A dialog of the same Call-ID that is still up is
   * returned as it is (the INVITE spiralled back through us, or was sent again after a challenge).
   */
  create(init: DialogInit): Dialog {
    const known = this.byCallId.get(init.callId);
    if (known !== undefined) return known;
    const dialog = new Dialog({ ...init, id: randomUUID(), owner: this.owner, createdAt: this.now() });
    this.track(dialog);
    this.emit('created', dialog);
    return dialog;
  }

  /** A provisional response with a To tag (180/183) went upstream: the call rings. */
  early(dialog: Dialog, toTag: string | undefined): void {
    if (dialog.state !== 'created') return;
    dialog.state = 'early';
    dialog.toTag = toTag;
    dialog.ringingAt = this.now();
    this.emit('early', dialog);
  }

  /** The 2xx went upstream: the dialog of that branch is the call's. */
  confirm(dialog: Dialog, answer: {
    toTag: string | undefined; answeredBy?: DialogAnswerer | undefined; backend?: DialogBackend | undefined; code: number; reason?: string | undefined;
    legs?: DialogLegs | undefined;
  }): void {
    if (dialog.state === 'confirmed' || dialog.ended) return;
    dialog.state = 'confirmed';
    dialog.toTag = answer.toTag;
    dialog.legs = answer.legs;
    dialog.answeredBy = answer.answeredBy;
    dialog.answeredAt = this.now();
    dialog.finalCode = answer.code;
    dialog.finalReason = answer.reason;
    if (answer.backend !== undefined) {
      dialog.backend = answer.backend;
      this.count(dialog, `backend:${answer.backend.uri}`);
    }
    this.emit('confirmed', dialog);
  }

  /** The call is over; the subscribers hear `ended` once. */
  end(dialog: Dialog, end: DialogEnd): void {
    if (dialog.ended) return;
    dialog.state = 'ended';
    dialog.endedAt = end.at ?? this.now();
    dialog.endCause = end.cause;
    dialog.hangupBy = end.hangupBy;
    if (dialog.answeredAt === undefined) {
      dialog.finalCode = end.code;
      dialog.finalReason = end.reason;
    }
    this.untrack(dialog);
    this.log.debug({ callId: dialog.callId, cause: end.cause, code: dialog.finalCode }, 'dialog ended');
    this.emit('ended', dialog);
  }

  /**
   * A BYE (or another request that ends the call) of dialog `callId` passed here, sent by the side whose
   * tag is `fromTag`. A dialog held elsewhere is ended there (DialogRemote). True when held here.
   */
  endByRequest(callId: string, fromTag: string | undefined, end: Omit<DialogEnd, 'hangupBy'>): boolean {
    const dialog = this.byCallId.get(callId);
    if (dialog === undefined) {
      // Without a cluster no dialog can be on its way here: a BYE for an unknown call is nothing to keep.
      if (this.remote === undefined) return false;
      this.remote.end(callId, fromTag, end);
      this.rememberUnmatched(callId, fromTag, { ...end, at: end.at ?? this.now() });
      return false;
    }
    this.end(dialog, { ...end, hangupBy: this.sideOf(dialog, fromTag) });
    return true;
  }

  /**
   * The holder's half of DialogRemote: a BYE that reached another worker, or a dialog that the draining
   * predecessor of this slot ended (this process took it up from the store too). False when not held here.
   */
  endFromRemote(callId: string, fromTag: string | undefined, end: DialogEnd): boolean {
    const dialog = this.byCallId.get(callId);
    if (dialog === undefined) return false;
    this.end(dialog, { ...end, hangupBy: end.hangupBy ?? this.sideOf(dialog, fromTag) });
    return true;
  }

  /**
   * Takes up dialogs persisted by an earlier process of this slot (a restart): confirmed calls whose BYE
   * is still to come. Their maxDuration counts from their INVITE; `restored` is emitted for each.
   */
  restore(snapshots: DialogSnapshot[]): number {
    let n = 0;
    for (const s of snapshots) {
      if (s.state !== 'confirmed' || this.byCallId.has(s.callId)) continue;
      const dialog = Object.assign(new Dialog({ ...s, owner: this.owner }), {
        state: 'confirmed' as const, toTag: s.toTag, answeredBy: s.answeredBy, backend: s.backend, ringingAt: s.ringingAt,
        answeredAt: s.answeredAt, finalCode: s.finalCode, finalReason: s.finalReason, legs: s.legs,
        media: s.mediaRelayed ? { node: s.mediaNode, branches: new Set<string>() } : undefined,
      });
      this.track(dialog);
      if (s.backend !== undefined) this.count(dialog, `backend:${s.backend.uri}`);
      this.emit('restored', dialog);
      n++;
      // Its BYE came before it did (it was on its way from the predecessor): it ends now, as of then.
      const early = this.unmatched.get(s.callId);
      if (early !== undefined && early.at >= s.createdAt) {
        this.unmatched.delete(s.callId);
        this.end(dialog, { ...early.end, hangupBy: this.sideOf(dialog, early.fromTag) });
      }
    }
    if (n > 0) this.log.info({ dialogs: n }, 'dialogs of an earlier process taken up');
    return n;
  }

  /**
   * A rolling restart: every confirmed dialog goes to the successor of this slot (as snapshots it
   * `restore`s) and is forgotten here without `ended` — the call goes on, held by the successor.
   */
  handOver(): DialogSnapshot[] {
    const out: DialogSnapshot[] = [];
    for (const d of [...this.byCallId.values()]) {
      if (d.state !== 'confirmed') continue;
      out.push(d.snapshot());
      this.untrack(d);
    }
    return out;
  }

  /** Stops the maxDuration timers; dialogs stay as they are (persisted ones are taken up by the next process). */
  stop(): void {
    this.stopped = true;
    for (const d of this.byCallId.values()) this.clearTimer(d);
  }

  // ---- internals ------------------------------------------------------------------------------------

  private rememberUnmatched(callId: string, fromTag: string | undefined, end: DialogEnd & { at: number }): void {
    const now = this.now();
    for (const [id, u] of this.unmatched) {
      if (now - u.at < UNMATCHED_END_MS && this.unmatched.size < UNMATCHED_END_MAX) break;
      this.unmatched.delete(id);
    }
    this.unmatched.delete(callId);
    this.unmatched.set(callId, { fromTag, end, at: end.at });
  }

  private sideOf(dialog: Dialog, fromTag: string | undefined): 'caller' | 'callee' {
    return fromTag === dialog.fromTag ? 'caller' : 'callee';
  }

  private track(dialog: Dialog): void {
    this.byCallId.set(dialog.callId, dialog);
    for (const party of [dialog.caller, dialog.callee]) {
      if (party.user !== undefined && party.domain !== undefined) this.count(dialog, `${party.user}@${party.domain}`.toLowerCase());
    }
    if (!this.stopped) {
      const left = Math.max(0, dialog.createdAt + this.maxDurationMs - this.now());
      dialog.timer = this.timers.setTimeout(() => this.expire(dialog), left);
    }
  }

  private untrack(dialog: Dialog): void {
    this.clearTimer(dialog);
    if (this.byCallId.get(dialog.callId) === dialog) this.byCallId.delete(dialog.callId);
    for (const key of dialog.counted) {
      const n = (this.counts.get(key) ?? 1) - 1;
      if (n <= 0) this.counts.delete(key);
      else this.counts.set(key, n);
    }
    dialog.counted = [];
  }

  private count(dialog: Dialog, key: string): void {
    if (dialog.counted.includes(key)) return;
    dialog.counted.push(key);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  private clearTimer(dialog: Dialog): void {
    if (dialog.timer !== undefined) this.timers.clearTimeout(dialog.timer);
    dialog.timer = undefined;
  }

  private expire(dialog: Dialog): void {
    dialog.timer = undefined;
    if (dialog.ended) return;
    this.log.info({ callId: dialog.callId, state: dialog.state, maxDurationS: this.maxDurationMs / 1000 }, 'dialog ended by maxDuration: no BYE came');
    this.end(dialog, { cause: 'timeout', hangupBy: 'system', code: dialog.answeredAt === undefined ? 408 : undefined });
  }

  private emit<K extends keyof DialogEvents>(event: K, ...args: DialogEvents[K]): void {
    const list = this.listeners[event];
    if (list === undefined) return;
    for (const l of list) {
      try {
        (l as Listener<DialogEvents[K]>)(...args);
      } catch (err) {
        this.log.error({ err: (err as Error).message, event }, 'dialog listener threw');
      }
    }
  }
}
