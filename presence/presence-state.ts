/**
 * What the presence server knows of each user, from three sources (Kamailio's presence + pua_dialoginfo):
 * - PUBLISH (RFC 3903): publications with an entity-tag and an expiry, per user;
 * - the registrar: online while a device is connected, reachable while only sleeping push devices are
 *   registered (RFC 8599), offline with none;
 * - the dialog module: the user's calls through this server (early, confirmed, just terminated), for the
 *   dialog event package (RFC 4235) and the "on the phone" activity.
 * `view(user)` merges them into what watchers are told; `changed` fires with the user whenever one of the
 * sources changed (the notifier then decides whether watchers learn anything new).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { DialogSnapshot } from '../src/dialog/index.js';
import { normalizeUser } from '../platform/http/index.js';
import type { DialogInfoEntry, PresenceView, PublishedState, Reachability } from './types.js';

/** How long a terminated dialog stays in the dialog-info documents, so that a throttled NOTIFY still tells it. */
const TERMINATED_KEPT_MS = 5000;

export interface Publication {
  etag: string;
  state: PublishedState;
  expiresAt: number;
  /** When its state was published (a refresh without a body keeps it: RFC 3903 §4.3 only extends). */
  stateAt: number;
}

export interface PresenceStateOptions {
  /** The user's reachability now (registrar bindings). */
  reachability(user: string): Reachability;
  clock?: () => number;
}

/**
 * A cluster's workers share what PUBLISH and calls say (registrations are replicated by the registrar): a
 * publication made here, and a dialog of this worker, are told to the others, which apply them without
 * telling back.
 */
export interface PresenceReplication {
  published(user: string, etag: string, replaces: string | undefined, state: PublishedState, expiresAt: number): void;
  unpublished(user: string, etag: string): void;
}

export type PresenceStateEvents = {
  /** A source changed for the user (`user@domain`). */
  changed: [user: string];
};

/** `user@domain` of one end of a dialog, when it is a user of ours. */
function userOf(party: DialogSnapshot['caller']): string | undefined {
  return party.user !== undefined && party.domain !== undefined ? `${party.user}@${party.domain.toLowerCase()}` : undefined;
}

export class PresenceState extends EventEmitter<PresenceStateEvents> {
  private readonly opts: PresenceStateOptions;
  private readonly clock: () => number;
  private readonly publications = new Map<string, Map<string, Publication & { timer: NodeJS.Timeout }>>();
  /** user → dialog id → its entry for that user. */
  private readonly dialogs = new Map<string, Map<string, DialogInfoEntry & { endedAt?: number }>>();
  private replication: PresenceReplication | undefined;

  constructor(options: PresenceStateOptions) {
    super();
    this.opts = options;
    this.clock = options.clock ?? Date.now;
  }

  // ---- PUBLISH (RFC 3903) -----------------------------------------------------------------------------

  /** The publication of `user` with this entity-tag, if it has not expired. */
  publication(user: string, etag: string): Publication | undefined {
    const p = this.publications.get(user)?.get(etag);
    return p !== undefined && p.expiresAt > this.clock() ? p : undefined;
  }

  publicationCount(user: string): number {
    return this.publications.get(user)?.size ?? 0;
  }

  /**
   * Stores a publication: a new one (no `etag`), or the refresh/modification of `etag` (its state kept when
   * `state` is undefined). A new entity-tag every time (RFC 3903 §6, step 8). Returns it.
   */
  publish(user: string, etag: string | undefined, state: PublishedState | undefined, expiresS: number): Publication {
    const before = etag === undefined ? undefined : this.publications.get(user)?.get(etag);
    const next = this.store(user, randomBytes(9).toString('base64url'), etag, state ?? before!.state, this.clock() + expiresS * 1000, state !== undefined || before === undefined);
    this.replication?.published(user, next.etag, etag, next.state, next.expiresAt);
    return next;
  }

  /** Removes a publication (Expires 0); true when there was one. */
  unpublish(user: string, etag: string): boolean {
    const gone = this.drop(user, etag);
    if (gone) this.replication?.unpublished(user, etag);
    return gone;
  }

  /** Set by a cluster worker (server/cluster). */
  setReplication(replication: PresenceReplication | undefined): void {
    this.replication = replication;
  }

  /** A publication another worker took. */
  applyRemotePublish(user: string, etag: string, replaces: string | undefined, state: PublishedState, expiresAt: number): void {
    if (expiresAt > this.clock()) this.store(user, etag, replaces, state, expiresAt, true);
  }

  applyRemoteUnpublish(user: string, etag: string): void {
    this.drop(user, etag);
  }

  private store(user: string, etag: string, replaces: string | undefined, state: PublishedState, expiresAt: number, changed: boolean): Publication {
    let list = this.publications.get(user);
    const before = replaces === undefined ? undefined : list?.get(replaces);
    if (before !== undefined) {
      clearTimeout(before.timer);
      list!.delete(replaces!);
    }
    // The newest state wins the view; a bodyless refresh keeps its place.
    const next = { etag, state, expiresAt, stateAt: changed || before === undefined ? this.clock() : before.stateAt };
    // Every replica expires it on its own clock; an expiry is not told around.
    const timer = setTimeout(() => this.drop(user, etag), Math.max(0, expiresAt - this.clock()));
    timer.unref();
    if (list === undefined) {
      list = new Map();
      this.publications.set(user, list);
    }
    list.set(etag, { ...next, timer });
    if (changed) this.emit('changed', user);
    return next;
  }

  private drop(user: string, etag: string): boolean {
    const list = this.publications.get(user);
    const p = list?.get(etag);
    if (p === undefined) return false;
    clearTimeout(p.timer);
    list!.delete(etag);
    if (list!.size === 0) this.publications.delete(user);
    this.emit('changed', user);
    return true;
  }

  // ---- dialogs ------------------------------------------------------------------------------------------

  /** A dialog of the tracker moved (created, early, confirmed, ended, restored): its users' entries follow. */
  dialog(d: Readonly<DialogSnapshot>): void {
    const caller = userOf(d.caller);
    const callee = d.answeredBy?.aor !== undefined ? normalizeUser(d.answeredBy.aor) : userOf(d.callee);
    if (caller !== undefined) this.dialogEntry(caller, d, 'initiator');
    if (callee !== undefined && callee !== caller) this.dialogEntry(callee, d, 'recipient');
  }

  private dialogEntry(user: string, d: Readonly<DialogSnapshot>, direction: 'initiator' | 'recipient'): void {
    let list = this.dialogs.get(user);
    if (list === undefined) {
      if (d.state === 'ended') return;
      list = new Map();
      this.dialogs.set(user, list);
    }
    const other = direction === 'initiator' ? d.callee : d.caller;
    const entry: DialogInfoEntry & { endedAt?: number } = {
      id: d.id,
      callId: d.callId,
      // The watched user's tag: From's for the caller, To's for the callee.
      localTag: direction === 'initiator' ? d.fromTag : d.toTag,
      remoteTag: direction === 'initiator' ? d.toTag : d.fromTag,
      direction,
      state: d.state === 'created' ? (direction === 'initiator' ? 'trying' : 'proceeding') : d.state === 'ended' ? 'terminated' : d.state,
      remoteIdentity: other.uri,
      remoteDisplay: other.displayName,
      localIdentity: `sip:${user}`,
    };
    if (d.state === 'ended') {
      entry.event = d.endCause === 'cancel' ? 'cancelled' : d.endCause === 'failure' ? 'rejected' : d.endCause === 'timeout' ? 'timeout'
        : d.endCause === 'bye' ? ((d.hangupBy === 'caller') === (direction === 'initiator') ? 'local-bye' : 'remote-bye') : 'error';
      entry.endedAt = this.clock();
      const timer = setTimeout(() => this.forgetEnded(user, d.id), TERMINATED_KEPT_MS);
      timer.unref();
    }
    list.set(d.id, entry);
    this.emit('changed', user);
  }

  private forgetEnded(user: string, id: string): void {
    const list = this.dialogs.get(user);
    if (list?.get(id)?.endedAt === undefined) return;
    list.delete(id);
    if (list.size === 0) this.dialogs.delete(user);
  }

  /** The user's dialogs for a dialog-info document: in progress, and those ended in the last seconds. */
  dialogInfo(user: string): DialogInfoEntry[] {
    return [...(this.dialogs.get(user)?.values() ?? [])].map(({ endedAt: _ended, ...entry }) => entry);
  }

  /** In a call: answered, or placing one (RFC 4480 `on-the-phone`). */
  onThePhone(user: string): boolean {
    for (const e of this.dialogs.get(user)?.values() ?? []) {
      if (e.state === 'confirmed' || (e.direction === 'initiator' && e.state !== 'terminated')) return true;
    }
    return false;
  }

  // ---- the merged view -----------------------------------------------------------------------------------

  /**
   * What watchers of `user` are told: offline (closed, nothing else) without a registered device; else the
   * newest publication's status, activities and note (open when there is none), with `on-the-phone` added
   * during a call.
   */
  view(user: string): PresenceView {
    const reachability = this.opts.reachability(user);
    const entity = `sip:${user}`;
    const onThePhone = this.onThePhone(user);
    if (reachability === 'offline') return { entity, basic: 'closed', activities: [], reachability, onThePhone: false };
    const now = this.clock();
    let newest: Publication | undefined;
    for (const p of this.publications.get(user)?.values() ?? []) {
      if (p.expiresAt > now && (newest === undefined || p.stateAt >= newest.stateAt)) newest = p;
    }
    const activities = [...(newest?.state.activities ?? [])];
    if (onThePhone && !activities.includes('on-the-phone')) activities.push('on-the-phone');
    return { entity, basic: newest?.state.basic ?? 'open', activities, note: newest?.state.note, reachability, onThePhone };
  }

  stop(): void {
    for (const list of this.publications.values()) for (const p of list.values()) clearTimeout(p.timer);
    this.publications.clear();
    this.dialogs.clear();
  }
}
