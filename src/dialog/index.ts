export { DEFAULT_MAX_DURATION_MS, Dialog, DialogTracker, type DialogTrackerOptions, snapshotOf } from './tracker.js';
export type {
  DialogAnswerer, DialogBackend, DialogDirection, DialogEnd, DialogEndCause, DialogEvents, DialogInit, DialogMedia, DialogParty,
  DialogRemote, DialogSnapshot, DialogState,
} from './types.js';
