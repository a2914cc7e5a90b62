export { DEFAULT_MAX_DURATION_MS, Dialog, DialogTracker, type DialogTrackerOptions, snapshotOf } from './tracker.js';
export type {
  DialogAnswerer, DialogBackend, DialogDirection, DialogEnd, DialogEndCause, DialogEvents, DialogInit, DialogMedia, DialogParty,
  DialogRemote, DialogSnapshot, DialogState, DialogLeg, DialogLegs, DialogHangup, DialogPeers, HangupOutcome, HangupResult,
} from './types.js';
