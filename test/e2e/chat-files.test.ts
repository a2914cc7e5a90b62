/**
 * Chat files through the running server (the XEP-0363 "slot" model, messaging/file-routes.ts): a user
 * uploads a file (raw or multipart) and sends its URL in a MESSAGE; the other member of that conversation
 * downloads it, whole or one byte range (RFC 9110 §14), anyone else gets 404. At rest the file is
 * ciphertext that does not authenticate once a byte changes, and the database holds no message text.
 * Uploads over messaging.maxFileSize are 413 and types outside messaging.fileTypes 415, keeping nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, createPhone } from '../helpers/softphone.js';

const DOMAIN = 'example.com';
const MAX_FILE_SIZE = 200_000;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface User {
  name: string;
  address: string;
  aor: string;
  password: string;
}

/** Every file under `dir`, recursively (none when it does not exist). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** A PNG-looking file: the signature, then a readable marker repeated, then random bytes. */
function pngWith(marker: string, size: number): Buffer {
  const text = Buffer.from(marker.repeat(Math.ceil(size / marker.length)), 'utf8');
  const buf = Buffer.concat([PNG_SIGNATURE, text.subarray(0, Math.floor(size / 2)), randomBytes(size)]).subarray(0, size);
  return buf;
}

describe('chat files: upload, a link in a MESSAGE, download by members only, encrypted at rest', { timeout: 120_000 }, () => {
  let t: TestServer;
  let n = 0;
  const phones: Softphone[] = [];

  before(async () => {
    t = await startTestServer({
      sip: { domain: [DOMAIN] },
      messaging: { maxFileSize: MAX_FILE_SIZE, fileTypes: ['image/*', 'text/plain'] },
    });
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await t?.stop();
  });

  const http = (): string => `http://127.0.0.1:${t.server.http.boundTo}`;
  const filesDir = (): string => join(t.dataDir, 'files');

  async function newUser(prefix: string): Promise<User> {
    const name = `${prefix}${++n}`;
    const password = `${name}-secret`;
    await t.addUser(`${name}@${DOMAIN}`, password);
    return { name, address: `${name}@${DOMAIN}`, aor: `sip:${name}@${DOMAIN}`, password };
  }

  async function phone(user: User): Promise<Softphone> {
    const p = await createPhone('sip.js', { uri: user.aor, password: user.password, wsUrl: `wss://${t.addr('wss')}` });
    phones.push(p);
    await p.register();
    return p;
  }

  async function tokenOf(user: User): Promise<string> {
    const res = await fetch(`${http()}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: user.address, password: user.password }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  async function upload(token: string, body: Buffer | FormData, contentType?: string): Promise<{ status: number; body: { id?: string; url?: string; size?: number; error?: string } }> {
    const res = await fetch(`${http()}/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...(contentType === undefined ? {} : { 'content-type': contentType }) },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : JSON.parse(text) };
  }

  function download(token: string, url: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } });
  }

  /** The body, or undefined when the server cut it short (the connection ended before Content-Length). */
  async function bytesOf(res: Response): Promise<Buffer | undefined> {
    try {
      return Buffer.from(await res.arrayBuffer());
    } catch {
      return undefined;
    }
  }

  it('a raw image/png upload is 201 {id,url}; its URL sent in a MESSAGE lets the other member download it, whole and by range; anyone else gets 404', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const carol = await newUser('carol');
    const [aliceToken, bobToken, carolToken] = await Promise.all([tokenOf(alice), tokenOf(bob), tokenOf(carol)]);
    const original = pngWith('raw upload ', 3000);

    const up = await upload(aliceToken, original, 'image/png');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.match(up.body.id ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.equal(up.body.url, `${http()}/v1/files/${up.body.id}`);
    assert.equal(up.body.size, original.length);
    const url = up.body.url!;
    assert.equal((await download(bobToken, url)).status, 404, 'before the link is sent, bob cannot see the file');

    const alicePhone = await phone(alice);
    const bobPhone = await phone(bob);
    assert.equal((await alicePhone.sendMessage(bob.aor, `look at this: ${url}`)).status, 202);
    const [m] = await bobPhone.waitForMessages(1);
    assert.ok(m!.body.includes(url));

    const whole = await download(bobToken, url);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'image/png');
    assert.ok((await bytesOf(whole))!.equals(original), 'bob gets the bytes alice uploaded');

    const part = await download(bobToken, url, { range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${original.length}`);
    assert.ok((await bytesOf(part))!.equals(original.subarray(10, 20)));

    const outsider = await download(carolToken, url);
    assert.equal(outsider.status, 404, 'carol is not in the conversation: as if the file did not exist');
    assert.equal((await download(carolToken, url, { range: 'bytes=10-19' })).status, 404);
  });

  it('a multipart upload is 201 {id,url} with the part\'s type, and its owner downloads the same bytes', async () => {
    const dave = await newUser('dave');
    const token = await tokenOf(dave);
    const original = pngWith('multipart upload ', 2500);
    const form = new FormData();
    form.append('file', new Blob([original], { type: 'image/jpeg' }), 'holiday.jpg');
    const up = await upload(token, form);
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.equal(up.body.url, `${http()}/v1/files/${up.body.id}`);
    const res = await download(token, up.body.url!);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    assert.ok((await bytesOf(res))!.equals(original));
  });

  it('the file on disk is ciphertext; with one byte flipped the download fails and never returns the original bytes', async () => {
    const erin = await newUser('erin');
    const token = await tokenOf(erin);
    const marker = `plaintext-marker-${randomUUID()}`;
    // Three 64 KiB chunks: the first chunk is checked before any header goes out, a later one mid-body.
    const original = pngWith(marker, 150_000);
    const before = new Set(filesUnder(filesDir()));
    const up = await upload(token, original, 'image/png');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const added = filesUnder(filesDir()).filter((f) => !before.has(f));
    assert.equal(added.length, 1, 'one file under dataDir/files');
    const blobPath = added[0]!;
    assert.ok(blobPath.endsWith(up.body.id!), blobPath);
    const blob = readFileSync(blobPath);
    assert.ok(!blob.includes(Buffer.from(marker, 'utf8')), 'the text in the file is not on disk');
    assert.ok(!blob.includes(original.subarray(PNG_SIGNATURE.length + 100, PNG_SIGNATURE.length + 200)));
    assert.ok(!blob.subarray(0, 16).includes(PNG_SIGNATURE), 'not even the PNG signature');
    assert.equal(statSync(blobPath).mode & 0o777, 0o600, 'the blob is 0600');

    const intact = await download(token, up.body.url!);
    assert.equal(intact.status, 200);
    assert.ok((await bytesOf(intact))!.equals(original));

    // A byte in the second chunk (past the 9-byte header and the first 65536+16): the headers are out by then.
    const late = Buffer.from(blob);
    late[9 + 65_552 + 1000]! ^= 0x01;
    writeFileSync(blobPath, late);
    const cut = await download(token, up.body.url!);
    const cutBody = await bytesOf(cut);
    assert.ok(cut.status !== 200 || cutBody === undefined || !cutBody.equals(original), `a changed second chunk is not served whole (status ${cut.status})`);
    assert.ok(cutBody === undefined || cutBody.length < original.length, 'the body ends before the changed chunk');

    // A byte in the first chunk: nothing is sent but a 500.
    const early = Buffer.from(blob);
    early[9 + 20]! ^= 0x80;
    writeFileSync(blobPath, early);
    const failed = await download(token, up.body.url!);
    const failedBody = await bytesOf(failed);
    assert.equal(failed.status, 500);
    assert.ok(failedBody === undefined || !failedBody.includes(original.subarray(0, 64)), 'no plaintext in the error');
    // And a Range read touching only the first chunk fails the same way.
    assert.equal((await download(token, up.body.url!, { range: 'bytes=10-19' })).status, 500);
  });

  it('an upload over messaging.maxFileSize is 413 and keeps nothing, raw or multipart; a type outside messaging.fileTypes is 415', async () => {
    const frank = await newUser('frank');
    const token = await tokenOf(frank);
    const before = filesUnder(filesDir()).sort();

    const raw = await upload(token, pngWith('too big ', MAX_FILE_SIZE + 1), 'image/png');
    assert.equal(raw.status, 413, JSON.stringify(raw.body));
    const form = new FormData();
    form.append('file', new Blob([pngWith('too big ', MAX_FILE_SIZE + 1)], { type: 'image/png' }), 'big.png');
    const multi = await upload(token, form);
    assert.equal(multi.status, 413, JSON.stringify(multi.body));
    assert.deepEqual(filesUnder(filesDir()).sort(), before, 'no file left behind');

    const atLimit = await upload(token, pngWith('just fits ', MAX_FILE_SIZE), 'image/png');
    assert.equal(atLimit.status, 201, 'exactly messaging.maxFileSize is taken');

    const before415 = filesUnder(filesDir()).sort();
    const pdf = await upload(token, Buffer.from('%PDF-1.7\n%…\n'), 'application/pdf');
    assert.equal(pdf.status, 415, JSON.stringify(pdf.body));
    const multiPdf = new FormData();
    multiPdf.append('file', new Blob([Buffer.from('%PDF-1.7\n')], { type: 'application/pdf' }), 'doc.pdf');
    assert.equal((await upload(token, multiPdf)).status, 415);
    assert.deepEqual(filesUnder(filesDir()).sort(), before415, 'no file for a refused type');
  });

  it('the SQLite database (with its WAL) holds no message text, though it holds the messages', async () => {
    const gina = await newUser('gina');
    const hank = await newUser('hank');
    const ginaPhone = await phone(gina);
    const hankPhone = await phone(hank);
    const marker = `secret-marker-${randomUUID()}`;
    for (const text of [`first ${marker}`, `second ${marker}`]) assert.equal((await ginaPhone.sendMessage(hank.aor, text)).status, 202);
    const got = await hankPhone.waitForMessages(2);
    assert.ok(got.every((m) => m.body.includes(marker)));
    await t.server.messaging!.delivery.idle();
    // The history API still reads them (opened with the key): they are stored.
    const token = await tokenOf(hank);
    const search = await fetch(`${http()}/v1/conversations`, { headers: { authorization: `Bearer ${token}` } });
    const conversations = ((await search.json()) as { conversations: Array<{ uri: string; last: { body: string } }> }).conversations;
    assert.equal(conversations.find((c) => c.uri === gina.aor)?.last.body, `second ${marker}`);

    // The database file and its write-ahead log, as a copy of them would be.
    const files = readdirSync(t.dataDir).filter((f) => f.startsWith('softswitch.db')).map((f) => join(t.dataDir, f));
    assert.ok(files.some((f) => f.endsWith('softswitch.db')), files.join(', '));
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    // Control: the rows are in these bytes (the users' addresses are stored as they are).
    assert.ok(bytes.includes(Buffer.from(gina.address, 'utf8')) || bytes.includes(Buffer.from(hank.address, 'utf8')), 'the search sees the message rows');
    assert.ok(!bytes.includes(Buffer.from(marker, 'utf8')), 'no message text in the database');
    assert.ok(!bytes.includes(Buffer.from(marker, 'utf16le')), 'not even as UTF-16');
  });
});
