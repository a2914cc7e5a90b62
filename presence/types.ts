/**
 * The presence service's public types: the state a user publishes, the merged view watchers are told, the
 * dialog package's entries, and what the policy answers. Types only.
 */

/** What one PUBLISH said (PIDF, RFC 3863, with RPID activities, RFC 4480), normalized. */
export interface PublishedState {
  /** The tuple status: `open` (willing to communicate) or `closed`. */
  basic: 'open' | 'closed';
  /**
   * RPID activities as their local element names (`away`, `busy`, `on-the-phone`, `meeting`, `vacation`,
   * `appointment`, …; `other` with its text as `other:<text>`), in document order.
   */
  activities: string[];
  /** The first `note` (person's, else tuple's), if any. */
  note?: string | undefined;
}

/** How a user can be reached now, from the registrar. */
export type Reachability = 'online' | 'push' | 'offline';

/** A user's presence as watchers are told it: every source merged (presence-service.ts). */
export interface PresenceView {
  /** The presentity, `sip:alice@example.com`. */
  entity: string;
  basic: 'open' | 'closed';
  /** Published activities, plus `on-the-phone` during a call. */
  activities: string[];
  note?: string | undefined;
  /** `online`: a device is connected; `push`: only sleeping push devices (reachable by a push); `offline`: none. */
  reachability: Reachability;
  /** In a call (early or confirmed) through this server. */
  onThePhone: boolean;
}

/** One dialog of the watched user in a dialog-info document (RFC 4235 §4.1). */
export interface DialogInfoEntry {
  /** The `id` attribute: stable for the dialog (our dialog id). */
  id: string;
  callId: string;
  localTag?: string | undefined;
  remoteTag?: string | undefined;
  /** `initiator`: the watched user called; `recipient`: the user is called. */
  direction: 'initiator' | 'recipient';
  state: 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';
  /** Why it terminated (RFC 4235 §4.1.6.2). */
  event?: 'cancelled' | 'rejected' | 'replaced' | 'local-bye' | 'remote-bye' | 'error' | 'timeout' | undefined;
  /** The other party's URI and display name. */
  remoteIdentity?: string | undefined;
  remoteDisplay?: string | undefined;
  /** The watched user's side: its AoR. */
  localIdentity?: string | undefined;
}

/** Waiting messages (RFC 3842 §5.2); without a voicemail backend, none. */
export interface MessageSummary {
  waiting: boolean;
  /** `Message-Account`: the mailbox's URI. */
  account?: string | undefined;
  /** Voice messages: new/old (and urgent new/old). */
  voice?: { new: number; old: number; urgentNew?: number; urgentOld?: number } | undefined;
}

/** Who may watch whom (presence.policy). */
export interface WatchPolicy {
  /** Whether `watcher` (user@domain, or a trusted source's From) may see `presentity`'s state (user@domain). */
  mayWatch(watcher: string, presentity: string): Promise<boolean>;
}
