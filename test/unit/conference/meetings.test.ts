/**
 * Meetings as data (conference/): the REST routes on a real HttpServer on loopback over a temporary SQLite store, with
 * real admin and user tokens. Who may create, read, change and delete; the lobby on by default; passwords kept
 * hashed and never answered; pages by cursor.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MeetingService, hashMeetingPassword, meetingRoutes, newMeetingId, verifyMeetingPassword } from '../../../conference/index.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';

describe('meeting passwords', () => {
  it('are kept as scrypt hashes that verify the password and nothing else', async () => {
    const hash = await hashMeetingPassword('open sesame');
    assert.match(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.ok(!hash.includes('open sesame'));
    assert.equal(await verifyMeetingPassword('open sesame', hash), true);
    assert.equal(await verifyMeetingPassword('open sesame!', hash), false);
    assert.notEqual(await hashMeetingPassword('open sesame'), hash, 'a fresh salt each time');
  });

  it('refuse a hash with a cost this module never makes, rather than spend it', async () => {
    const hash = await hashMeetingPassword('pw');
    const costly = hash.replace(/^scrypt\$16384\$/, 'scrypt$1048576$');
    assert.equal(await verifyMeetingPassword('pw', costly), false);
    assert.equal(await verifyMeetingPassword('pw', 'plain text'), false);
  });
});

describe('meeting ids', () => {
  it('are 12 characters of lower-case base32, different each time', () => {
    const ids = new Set(Array.from({ length: 200 }, () => newMeetingId()));
    assert.equal(ids.size, 200);
    for (const id of ids) assert.match(id, /^[a-z2-7]{12}$/);
  });
});

describe('meetings over /v1/meetings', () => {
  let app: HttpApp;
  const as = (who: 'alice' | 'bob' | 'admin', method: string, path: string, body?: unknown) =>
    app.call(method, path, who === 'admin' ? app.adminToken : app.tokens[who]!, body);

  before(async () => {
    app = await startHttpApp(['alice', 'bob'], (store) => meetingRoutes(new MeetingService({
      repository: store.meetings,
      userExists: async (user) => ['alice@example.com', 'bob@example.com'].includes(user),
    })));
  });

  after(async () => {
    await app?.close();
  });

  it('a user creates a meeting it owns, lobby on by default, with its SIP URI and join link; the password is never answered', async () => {
    const res = await as('alice', 'POST', '/meetings', { title: 'Standup', password: 'pw-1', startsAt: '2027-01-04T09:00:00Z', endsAt: '2027-01-04T09:15:00Z' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const m = res.body;
    assert.match(String(m.id), /^[a-z2-7]{12}$/);
    assert.deepEqual({ ...m, id: 'x', createdAt: typeof m.createdAt, updatedAt: typeof m.updatedAt }, {
      id: 'x', title: 'Standup', owner: 'alice@example.com', startsAt: '2027-01-04T09:00:00.000Z', endsAt: '2027-01-04T09:15:00.000Z',
      hasPassword: true, lobby: true, maxParticipants: 100, recordingAllowed: false,
      uri: `sip:meet-${String(m.id)}@example.com`, link: `/console/?meeting=${String(m.id)}`, createdAt: 'string', updatedAt: 'string',
    });
    assert.ok(!JSON.stringify(m).includes('pw-1') && !JSON.stringify(m).includes('scrypt'));
    const stored = await app.store.meetings.get(String(m.id));
    assert.equal(await verifyMeetingPassword('pw-1', stored!.passwordHash!), true);
  });

  it('another user reads only the public face of a meeting, and cannot change or delete it (403)', async () => {
    const m = (await as('alice', 'POST', '/meetings', { title: 'Private', password: 'pw' })).body;
    const seen = await as('bob', 'GET', `/meetings/${String(m.id)}`);
    assert.equal(seen.status, 200);
    assert.deepEqual(Object.keys(seen.body).sort(), ['hasPassword', 'id', 'link', 'lobby', 'title', 'uri']);
    const refused = await as('bob', 'PATCH', `/meetings/${String(m.id)}`, { title: 'Mine now' });
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body, { code: 'AUTH_ERR_SCOPE', message: 'only the meeting\'s owner (or an admin) may change it' });
    assert.equal((await as('bob', 'DELETE', `/meetings/${String(m.id)}`)).status, 403);
    assert.equal((await as('alice', 'GET', `/meetings/${String(m.id)}`)).body.owner, 'alice@example.com');
    assert.equal((await as('bob', 'POST', '/meetings', { title: 'For alice', owner: 'alice@example.com' })).status, 403);
  });

  it('the owner changes a meeting (null removes the password) and deletes it; then it is 404', async () => {
    const m = (await as('alice', 'POST', '/meetings', { title: 'Retro', password: 'pw', lobby: true })).body;
    const changed = await as('alice', 'PATCH', `/meetings/${String(m.id)}`, { title: 'Retro 2', password: null, lobby: false, maxParticipants: 12 });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual([changed.body.title, changed.body.hasPassword, changed.body.lobby, changed.body.maxParticipants], ['Retro 2', false, false, 12]);
    assert.equal((await as('alice', 'PATCH', `/meetings/${String(m.id)}`, { startsAt: '2027-01-01T10:00:00Z', endsAt: '2027-01-01T09:00:00Z' })).status, 400);
    assert.equal((await as('alice', 'DELETE', `/meetings/${String(m.id)}`)).status, 204);
    const gone = await as('alice', 'GET', `/meetings/${String(m.id)}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'API_ERR_NOT_FOUND');
    assert.equal((await as('alice', 'DELETE', `/meetings/${String(m.id)}`)).status, 404);
  });

  it('refuses a malformed body or id with 400 naming the field', async () => {
    for (const [body, field] of [
      [{}, /title/], [{ title: ' ' }, /title/], [{ title: 'x', startsAt: 'tomorrow' }, /startsAt/], [{ title: 'x', maxParticipants: 0 }, /maxParticipants/],
      [{ title: 'x', password: '' }, /password/], [{ title: 'x', colour: 'red' }, /colour/],
    ] as const) {
      const res = await as('alice', 'POST', '/meetings', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(JSON.stringify(res.body), field);
    }
    assert.equal((await as('alice', 'GET', '/meetings/NOT-AN-ID')).status, 400);
  });

  it('an admin creates a meeting for a named, existing owner, and lists everyone\'s or one owner\'s', async () => {
    assert.equal((await as('admin', 'POST', '/meetings', { title: 'No owner' })).status, 400);
    assert.equal((await as('admin', 'POST', '/meetings', { title: 'Ghost', owner: 'ghost@example.com' })).status, 400);
    // The user part is case-sensitive, the domain is not (RFC 3261 §19.1.4): the owner is kept normalized.
    assert.equal((await as('admin', 'POST', '/meetings', { title: 'Not bob', owner: 'Bob@example.com' })).status, 400);
    const m = await as('admin', 'POST', '/meetings', { title: 'For bob', owner: 'bob@EXAMPLE.com' });
    assert.equal(m.status, 201, JSON.stringify(m.body));
    assert.equal(m.body.owner, 'bob@example.com');
    const bobs = await as('admin', 'GET', '/meetings?owner=bob@Example.COM');
    assert.deepEqual((bobs.body.meetings as Array<{ title: string }>).map((x) => x.title), ['For bob']);
    assert.ok(((await as('admin', 'GET', '/meetings')).body.meetings as unknown[]).length >= 3);
  });

  it('a user lists its own meetings only, newest first, a page at a time', async () => {
    for (const title of ['p1', 'p2', 'p3']) assert.equal((await as('bob', 'POST', '/meetings', { title })).status, 201);
    assert.equal((await as('bob', 'GET', '/meetings?owner=alice@example.com')).status, 403);
    const titles: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await as('bob', 'GET', `/meetings?limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const page = res.body.meetings as Array<{ title: string; owner: string }>;
      assert.ok(page.every((x) => x.owner === 'bob@example.com'));
      titles.push(...page.map((x) => x.title));
      cursor = res.body.next as string | undefined;
    } while (cursor !== undefined);
    assert.deepEqual(titles.filter((t) => t.startsWith('p')), ['p3', 'p2', 'p1']);
    assert.equal((await as('bob', 'GET', '/meetings?cursor=garbage')).status, 400);
  });
});
