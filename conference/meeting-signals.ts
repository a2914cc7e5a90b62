/**
 * "Something about meeting X changed": the one signal the apps' event streams (conference/event-routes.ts) wait for.
 * It carries only the meeting's id; a stream that hears it reads the participant again from SQL and sends what
 * changed, so a lost or doubled signal costs nothing but promptness (the streams also look every few seconds).
 * Across a node's workers it goes through the primary (`cluster:meeting`, set with setRemote); across softswitch
 * nodes the streams' own periodic look covers it until shared state moves to Redis.
 */
import { EventEmitter } from 'node:events';

export class MeetingSignals extends EventEmitter<{ changed: [string] }> {
  private remote: ((meetingId: string) => void) | undefined;

  constructor() {
    super();
    // One listener per open event stream: many is normal.
    this.setMaxListeners(0);
  }

  /** Where this process's changes go besides its own streams (the other workers). */
  setRemote(remote: (meetingId: string) => void): void {
    this.remote = remote;
  }

  /** A change made here: this process's streams and the other workers' hear it. */
  changed(meetingId: string): void {
    this.emit('changed', meetingId);
    this.remote?.(meetingId);
  }

  /** A change another worker made: only this process's streams hear it. */
  fromPeer(meetingId: string): void {
    this.emit('changed', meetingId);
  }
}
