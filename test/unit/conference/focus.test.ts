/**
 * The focus's derivations (conference/focus-secrets.ts: room id and secret, participant and focus tokens from one
 * server key, the key file in dataDir) and its role checks (conference/focus.ts: who moderates, who joins as what, guests too).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FOCUS_KEY_FILE, FocusSecrets, loadFocusKey, mayModerate, roleOf } from '../../../conference/index.js';
import type { MeetingRecord, ParticipantRecord } from '../../../platform/store/index.js';
import { silentLogger } from '../../../src/log/index.js';

const KEY = Buffer.alloc(32, 7);

describe('focus secrets', () => {
  it('derive the same room id, room secret and tokens from the same key (every worker agrees without shared state)', () => {
    const [a, b] = [new FocusSecrets(KEY), new FocusSecrets(Buffer.from(KEY))];
    assert.equal(a.roomId('aaaaaaaaaaaa'), b.roomId('aaaaaaaaaaaa'));
    assert.equal(a.roomSecret('aaaaaaaaaaaa'), b.roomSecret('aaaaaaaaaaaa'));
    assert.equal(a.participantToken('aaaaaaaaaaaa', 'pppppppppppp'), b.participantToken('aaaaaaaaaaaa', 'pppppppppppp'));
    assert.equal(a.focusToken(), b.focusToken());
  });

  it('differ by meeting, by participant and by key, and no two kinds coincide', () => {
    const s = new FocusSecrets(KEY);
    const other = new FocusSecrets(Buffer.alloc(32, 8));
    assert.notEqual(s.roomId('aaaaaaaaaaaa'), s.roomId('bbbbbbbbbbbb'));
    assert.notEqual(s.roomId('aaaaaaaaaaaa'), other.roomId('aaaaaaaaaaaa'));
    assert.notEqual(s.roomSecret('aaaaaaaaaaaa'), other.roomSecret('aaaaaaaaaaaa'));
    assert.notEqual(s.participantToken('aaaaaaaaaaaa', 'pppppppppppp'), s.participantToken('aaaaaaaaaaaa', 'qqqqqqqqqqqq'));
    assert.notEqual(s.participantToken('aaaaaaaaaaaa', 'pppppppppppp'), s.participantToken('bbbbbbbbbbbb', 'pppppppppppp'));
    const all = [s.roomSecret('aaaaaaaaaaaa'), s.participantToken('aaaaaaaaaaaa', 'aaaaaaaaaaaa'), s.focusToken()];
    assert.equal(new Set(all).size, all.length);
  });

  it('give room ids that are positive integers below 2^48, and tokens of 256 bits in base64url', () => {
    const s = new FocusSecrets(KEY);
    for (const id of ['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'zzzzzzzzzzzz', '234567234567']) {
      const room = s.roomId(id);
      assert.ok(Number.isSafeInteger(room) && room >= 1 && room < 2 ** 48, String(room));
    }
    assert.match(s.participantToken('aaaaaaaaaaaa', 'pppppppppppp'), /^[A-Za-z0-9_-]{43}$/);
    assert.match(s.roomSecret('aaaaaaaaaaaa'), /^[A-Za-z0-9_-]{43}$/);
  });

  it('refuse a key shorter than 16 bytes', () => {
    assert.throws(() => new FocusSecrets(Buffer.alloc(8)), TypeError);
  });

  it('come from a key made on first start into dataDir/meetings.key (0600) and read back as it is afterwards', () => {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-focus-'));
    try {
      const first = loadFocusKey({ dataDir: dir, logger: silentLogger() });
      assert.equal(first.length, 32);
      const path = join(dir, FOCUS_KEY_FILE);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(readFileSync(path, 'utf8').trim(), first.toString('hex'));
      assert.deepEqual(loadFocusKey({ dataDir: dir, logger: silentLogger() }), first);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const meeting: MeetingRecord = {
  id: 'mmmmmmmmmmmm', title: 'Roles', owner: 'alice@example.com', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: true,
  maxParticipants: 10, recordingAllowed: false, createdAt: 0, updatedAt: 0,
};
const row = (over: Partial<ParticipantRecord>): ParticipantRecord => ({
  id: 'pppppppppppp', meetingId: meeting.id, user: 'bob@example.com', displayName: 'Bob', role: 'participant', state: 'admitted', feedId: 1,
  askedAt: 0, decidedAt: 0, leftAt: undefined, ...over,
});

describe('focus roles', () => {
  it('the owner joins as owner, an admin token as moderator, any other user as participant', () => {
    assert.equal(roleOf({ kind: 'user', user: 'alice@example.com' }, meeting), 'owner');
    assert.equal(roleOf({ kind: 'admin' }, meeting), 'moderator');
    assert.equal(roleOf({ kind: 'user', user: 'bob@example.com' }, meeting), 'participant');
  });

  it('moderators are an admin, the owner (present or not), and a participant admitted with the moderator role; no one else', () => {
    assert.equal(mayModerate({ kind: 'admin' }, meeting, undefined), true);
    assert.equal(mayModerate({ kind: 'user', user: 'alice@example.com' }, meeting, undefined), true);
    const bob = { kind: 'user', user: 'bob@example.com' } as const;
    assert.equal(mayModerate(bob, meeting, undefined), false);
    assert.equal(mayModerate(bob, meeting, row({})), false, 'an admitted participant');
    assert.equal(mayModerate(bob, meeting, row({ role: 'moderator' })), true);
    assert.equal(mayModerate(bob, meeting, row({ role: 'moderator', state: 'waiting' })), false, 'a moderator still in the lobby');
    assert.equal(mayModerate(bob, meeting, row({ role: 'moderator', state: 'kicked' })), false, 'a kicked moderator');
  });

  it('a guest joins as a participant, and does not moderate unless its own admitted row was made moderator', () => {
    const guest = { kind: 'guest', meeting: meeting.id, guest: 'gggggggggggg' } as const;
    assert.equal(roleOf(guest, meeting), 'participant');
    assert.equal(mayModerate(guest, meeting, undefined), false);
    assert.equal(mayModerate(guest, meeting, row({ id: 'gggggggggggg', user: undefined })), false);
    assert.equal(mayModerate(guest, meeting, row({ id: 'gggggggggggg', user: undefined, role: 'moderator' })), true);
  });
});
