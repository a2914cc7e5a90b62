/**
 * The dialog module's types: one record per call that the proxy forwards, from the initial INVITE to its
 * end (Kamailio's dialog module). Types only.
 */
import type { Destination } from '../transport/types.js';

/** created: the INVITE went out; early: a provisional with a To tag came back; confirmed: a 2xx; ended. */
export type DialogState = 'created' | 'early' | 'confirmed' | 'ended';

/** user-user between two users of ours; user-pstn from a user to a backend or trunk; pstn-user the other way. */
export type DialogDirection = 'user-user' | 'user-pstn' | 'pstn-user';

/**
 * What ended the dialog: a BYE; the caller's CANCEL; a final failure of the INVITE; `dialog.maxDuration`
 * without a BYE; the in-dialog keep-alive found a dead leg; the server stopped without handing it on.
 */
export type DialogEndCause = 'bye' | 'cancel' | 'failure' | 'timeout' | 'keepalive' | 'shutdown';

/** One end of the call as the proxy saw it. */
export interface DialogParty {
  /** The URI (From URI for the caller, Request-URI as received for the callee). */
  uri: string;
  /** A user of ours: the AoR's user part and domain. */
  user?: string | undefined;
  domain?: string | undefined;
  /** The display name of From (caller) or To (callee). */
  displayName?: string | undefined;
  /** A telephone number: the caller's presented number, or the number dialled. */
  number?: string | undefined;
}

/** Who or what picked the call up. */
export interface DialogAnswerer {
  /** The AoR (user@domain) whose device answered, when one of our users did. */
  aor?: string | undefined;
  /** The answering device's Contact URI, or the backend's URI. */
  contact?: string | undefined;
  /** The device's +sip.instance (RFC 5626), when it registered one. */
  instance?: string | undefined;
}

/** The backend (FreeSWITCH, trunk) the call went through: the balancer's choice. */
export interface DialogBackend {
  id: number;
  set: string;
  uri: string;
}

/** What the media relay hook keeps per call. */
export interface DialogMedia {
  /** The relay (rtpengine node host:port) that holds the call's media. */
  node?: string | undefined;
  /** Our Via branches of the initial INVITE whose offer was relayed: one relay session each. */
  branches: Set<string>;
}

/**
 * One side of an answered call as the proxy must address it to send it a request within the dialog (the BYE
 * of an administrator's hang-up, Kamailio's dlg_end_dlg): RFC 3261 §12.2.1.1 from the proxy's seat.
 */
export interface DialogLeg {
  /** Its own From (caller) or To (callee) value with its tag: the To of a request to it, the From of one to the other side. */
  identity: string;
  /** Its Contact URI: the Request-URI of a request to it (the remote target, §12.1). */
  target: string;
  /** The Record-Route values of the proxies between this proxy and it, nearest first: the Route of a request to it. */
  routeSet: string[];
  /** Where the next hop towards it is: the connection it uses (a WebSocket phone has no other way in), or an address. */
  destination: Destination;
  /** The highest CSeq number of the requests it sent within the dialog (0: none yet, as a callee's often is). */
  cseq: number;
}

/** Both sides of an answered call (DialogLeg). */
export interface DialogLegs {
  caller: DialogLeg;
  callee: DialogLeg;
}

/** The fields a dialog is created with (the routing policy knows them when it forwards the INVITE). */
export interface DialogInit {
  callId: string;
  fromTag: string;
  caller: DialogParty;
  callee: DialogParty;
  direction: DialogDirection;
}

/** A dialog as it is persisted and crosses processes: plain JSON. Times are ms since the epoch. */
export interface DialogSnapshot extends DialogInit {
  id: string;
  /** The worker slot that holds it (0 without a cluster). */
  owner: number;
  state: DialogState;
  toTag?: string | undefined;
  answeredBy?: DialogAnswerer | undefined;
  backend?: DialogBackend | undefined;
  mediaNode?: string | undefined;
  mediaRelayed: boolean;
  createdAt: number;
  ringingAt?: number | undefined;
  answeredAt?: number | undefined;
  endedAt?: number | undefined;
  endCause?: DialogEndCause | undefined;
  /** Who ended an answered call with a BYE (the From tag of the BYE says which side). */
  hangupBy?: 'caller' | 'callee' | 'system' | undefined;
  /** The INVITE's final status sent upstream (the 2xx's for an answered call). */
  finalCode?: number | undefined;
  finalReason?: string | undefined;
  /** How to reach each side within the dialog (recorded by the proxy when the 2xx went upstream). */
  legs?: DialogLegs | undefined;
}

/** How a dialog ends. */
export interface DialogEnd {
  cause: DialogEndCause;
  hangupBy?: 'caller' | 'callee' | 'system' | undefined;
  /** The final status, when the INVITE never got a 2xx. */
  code?: number | undefined;
  reason?: string | undefined;
  /** ms; now by default. */
  at?: number | undefined;
}

/** Events of the DialogTracker. */
export type DialogEvents = {
  created: [dialog: Readonly<DialogSnapshot>];
  early: [dialog: Readonly<DialogSnapshot>];
  confirmed: [dialog: Readonly<DialogSnapshot>];
  ended: [dialog: Readonly<DialogSnapshot>];
  /** A persisted dialog was taken up again after a restart (it is confirmed; no `confirmed` follows). */
  restored: [dialog: Readonly<DialogSnapshot>];
  /** An answered call's facts changed (a side's CSeq rose): what is persisted should follow. */
  updated: [dialog: Readonly<DialogSnapshot>];
};

/**
 * Where a dialog this process does not hold is ended: the cluster tells the worker that holds it (a BYE
 * over a connection reaches that connection's worker, whichever worker forwarded the INVITE).
 */
export interface DialogRemote {
  end(callId: string, fromTag: string | undefined, end: DialogEnd): void;
  /**
   * An in-dialog request of a call held elsewhere passed here (its sender's connection is this worker's):
   * the holder raises that side's CSeq (DialogTracker.requestSeen), or its hang-up BYE could go below it.
   */
  seen?(callId: string, fromTag: string | undefined, cseq: number): void;
}

/** What `DialogTracker.hangUp` did: BYEs sent to both sides, or the ringing call's branches CANCELled (the caller gets 487). */
export type HangupResult = 'bye' | 'cancel';

/**
 * What ends a call from outside (the admin API): the proxy, which knows its routes and connections. Returns
 * undefined when it cannot (an answered call whose legs were not recorded: taken up from an older version).
 */
export interface DialogHangup {
  hangUp(dialog: Readonly<DialogSnapshot>): HangupResult | undefined;
}

/**
 * The other workers of a cluster as the admin API sees the calls: their active dialogs, and the hang-up of
 * one they hold. `missing` counts the workers that did not answer within `timeoutMs`.
 */
export interface DialogPeers {
  list(timeoutMs: number): Promise<{ dialogs: DialogSnapshot[]; missing: number }>;
  /** The holder's answer (undefined: nobody holds it, or its holder could not end it), and the silent workers. */
  hangUp(id: string, timeoutMs: number): Promise<{ result: HangupOutcome; missing: number }>;
}

/** A hang-up's outcome where the dialog was looked for: done, not held there, or held but not endable. */
export type HangupOutcome = HangupResult | 'unknown' | 'unreachable';
