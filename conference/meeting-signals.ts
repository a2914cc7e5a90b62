/**
 * "Something about meeting X changed": the one signal the apps' event streams (conference/event-routes.ts) wait for.
 * It carries only the meeting's id; a stream that hears it reads the participant again from SQL and sends what
 * changed, so a lost or doubled signal costs nothing but promptness (the streams also look every few seconds).
 * Across a node's workers it goes through the primary (`cluster:meeting`, set with setRemote); across softswitch
 * nodes, when a shared state is given (`cluster.redis`), on its channel `meetings`. A worker with both hears another
 * worker's change twice, which costs one more read.
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { SharedState } from '../platform/state/index.js';

/** The shared-state channel the changes go out on. */
export const MEETINGS_CHANNEL = 'meetings';

/** A change as published: which process made it (its own are not heard twice) and the meeting. */
const sharedChange = z.strictObject({ from: z.string().min(1), meeting: z.string().min(1) });

export interface SharedMeetingSignals {
  state: SharedState;
  /** This process among all that share the state (node and worker). */
  processId: string;
}

export class MeetingSignals extends EventEmitter<{ changed: [string] }> {
  private remote: ((meetingId: string) => void) | undefined;
  private readonly shared: SharedMeetingSignals | undefined;
  /** Resolves once the other processes' changes are heard (at once without a shared state). */
  readonly listening: Promise<void>;
  private unsubscribe: (() => void) | undefined;

  constructor(shared?: SharedMeetingSignals) {
    super();
    // One listener per open event stream: many is normal.
    this.setMaxListeners(0);
    this.shared = shared;
    this.listening = shared === undefined ? Promise.resolve() : this.listen(shared);
  }

  /** Where this process's changes go besides its own streams (the other workers). */
  setRemote(remote: (meetingId: string) => void): void {
    this.remote = remote;
  }

  /** A change made here: this process's streams, the other workers' and the other nodes' hear it. */
  changed(meetingId: string): void {
    this.emit('changed', meetingId);
    this.remote?.(meetingId);
    if (this.shared !== undefined) void this.shared.state.publish(MEETINGS_CHANNEL, JSON.stringify({ from: this.shared.processId, meeting: meetingId }));
  }

  /** A change another worker made: only this process's streams hear it. */
  fromPeer(meetingId: string): void {
    this.emit('changed', meetingId);
  }

  /** Stops hearing the other processes (the shared state itself is closed by its owner). */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private async listen(shared: SharedMeetingSignals): Promise<void> {
    this.unsubscribe = await shared.state.subscribe(MEETINGS_CHANNEL, (message) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(message);
      } catch {
        return; // not ours: the channel is shared, a stranger's message costs nothing
      }
      const change = sharedChange.safeParse(parsed);
      if (change.success && change.data.from !== shared.processId) this.fromPeer(change.data.meeting);
    });
  }
}
