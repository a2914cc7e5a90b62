/**
 * What the focus derives rather than stores: a meeting's Janus room id and room secret, a participant's Janus token,
 * and the focus's own token, each an HMAC-SHA-256 of a label under one server key. Every worker of every node that
 * shares the key derives the same values without shared state, and a participant's token can be revoked later
 * (remove_token) from its id alone, without ever being written down.
 *
 * The key is 32 random bytes kept in hex in `dataDir/meetings.key` (0600), made on first start; nodes that share
 * meetings share the file (as they share http.tokenSecret). Changing it orphans the live rooms and tokens.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { categoryLogger, type Logger } from '../src/log/index.js';
import { PRIVATE_FILE_MODE, logTightened, tightenModes } from '../src/transport/file-modes.js';

export const FOCUS_KEY_FILE = 'meetings.key';
const KEY_BYTES = 32;
/** Room ids stay below 2^48: exact in every JSON parser, and 48 bits make a clash between meetings a curiosity. */
const ROOM_ID_SPACE = 2 ** 48 - 1;

export class FocusSecrets {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (!Buffer.isBuffer(key) || key.length < 16) throw new TypeError('FocusSecrets: the key must be at least 16 bytes');
    this.key = key;
  }

  /** The meeting's videoroom id: a positive integer below 2^48. */
  roomId(meetingId: string): number {
    return (this.mac('room', meetingId).readUIntBE(0, 6) % ROOM_ID_SPACE) + 1;
  }

  /** The room's `secret` (edit, destroy, kick, allowed …): the focus's alone, never answered to an app. */
  roomSecret(meetingId: string): string {
    return this.mac('room-secret', meetingId).toString('base64url');
  }

  /**
   * Breakout room `n` (1 …) of the meeting: its own videoroom, id and secret derived as a meeting's from `meetingId#n`.
   * Meeting ids are base32 (a-z, 2-7): no meeting id contains '#', so no breakout room is another meeting's room.
   */
  breakoutRoomId(meetingId: string, n: number): number {
    return this.roomId(`${meetingId}#${n}`);
  }

  breakoutRoomSecret(meetingId: string, n: number): string {
    return this.roomSecret(`${meetingId}#${n}`);
  }

  /** The Janus token of one participant (one join of one meeting): stored in Janus by add_token, never in SQL. */
  participantToken(meetingId: string, participantId: string): string {
    return this.mac('participant-token', `${meetingId}/${participantId}`).toString('base64url');
  }

  /** The focus's own Janus token: with token_auth on, the focus too needs one to open its session. */
  focusToken(): string {
    return this.mac('focus-token', '').toString('base64url');
  }

  private mac(label: string, value: string): Buffer {
    // The label and the value are separated by a byte neither contains: no two (label, value) pairs collide.
    return createHmac('sha256', this.key).update(`${label}\u0000${value}`).digest();
  }
}

/**
 * The key of `dataDir/meetings.key`, made on first use. The workers of a node start together and must end up with the
 * same key: each writes a candidate and links it to the final name, which fails with EEXIST for all but the first
 * (the user token key's way, platform/http/user-tokens.ts).
 */
export function loadFocusKey(options: { dataDir: string; logger: Logger }): Buffer {
  const path = join(options.dataDir, FOCUS_KEY_FILE);
  const log = categoryLogger(options.logger, 'conference');
  const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const key = randomBytes(KEY_BYTES);
  writeFileSync(candidate, key.toString('hex') + '\n', { flag: 'wx', mode: PRIVATE_FILE_MODE });
  try {
    linkSync(candidate, path);
    log.info({ path }, 'meetings key created');
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    logTightened(log, 'the meetings key', tightenModes([{ path, mode: PRIVATE_FILE_MODE }]));
    const text = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${path} does not hold a ${KEY_BYTES}-byte key in hex (delete it to have a new one made; live meeting rooms and tokens are then orphaned)`);
    return Buffer.from(text, 'hex');
  } finally {
    unlinkSync(candidate);
  }
}
