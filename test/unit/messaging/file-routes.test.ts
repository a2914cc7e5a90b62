/**
 * POST/GET/DELETE /v1/files (messaging/file-routes.ts) on a real HttpServer on loopback, with user tokens
 * signed in against a real temp SQLite store, files encrypted on a temp folder, and a small in-memory file
 * index (the SQL chat repository is tested with the store): upload raw and multipart, the size limit and the
 * type allow list (nothing kept on a refusal), who may read (members only, others 404), byte ranges at
 * chunk boundaries, tampered bytes on disk, deletion.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileRecord } from '../../../platform/store/index.js';
import { DEFAULT_BODY_LIMIT } from '../../../platform/http/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { Envelope } from '../../../messaging/envelope.js';
import { CHUNK_BYTES, EncryptedFiles, FILE_HEADER_BYTES } from '../../../messaging/file-store.js';
import { LocalBlobStore } from '../../../messaging/local-blobs.js';
import { fileRoutes, parseRange } from '../../../messaging/file-routes.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';
import { captureLogger } from '../../helpers/log-capture.js';

/** Above Fastify's default bodyLimit (1 MiB): the limit here is messaging.maxFileSize alone. */
const MAX = 1_200_000;
const TYPES = ['image/*', 'audio/*', 'text/plain', 'application/octet-stream'];

/** The file rows and the conversations, in memory. */
class MemoryFileIndex {
  readonly rows = new Map<string, FileRecord>();
  readonly links = new Map<string, Set<string>>();
  readonly members = new Map<string, Set<string>>([
    ['conv-ab', new Set(['alice@example.com', 'bob@example.com'])],
    ['conv-cd', new Set(['carol@example.com', 'dave@example.com'])],
  ]);

  async addFile(file: FileRecord): Promise<void> {
    this.rows.set(file.id, file);
  }
  async getFile(id: string): Promise<FileRecord | undefined> {
    return this.rows.get(id);
  }
  async linkFile(fileId: string, conversationId: string): Promise<void> {
    const set = this.links.get(fileId) ?? new Set<string>();
    set.add(conversationId);
    this.links.set(fileId, set);
  }
  async deleteFile(id: string): Promise<void> {
    this.rows.delete(id);
    this.links.delete(id);
  }
  mayRead = async (user: string, file: FileRecord): Promise<boolean> =>
    file.owner === user || [...(this.links.get(file.id) ?? [])].some((c) => this.members.get(c)?.has(user) === true);
  mayPost = async (user: string, conversationId: string): Promise<boolean> => this.members.get(conversationId)?.has(user) === true;
}

describe('/v1/files', () => {
  let dir: string;
  let app: HttpApp;
  let base: string;
  let root: string;
  const index = new MemoryFileIndex();
  const capture = captureLogger();
  /** 2.5 chunks. */
  const big = randomBytes(CHUNK_BYTES * 2 + CHUNK_BYTES / 2);

  const auth = (who: string) => ({ authorization: `Bearer ${who === 'admin' ? app.adminToken : app.tokens[who]!}` });

  async function upload(who: string, body: Buffer | FormData, contentType: string | undefined, query = ''): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers: Record<string, string> = auth(who);
    if (contentType !== undefined) headers['content-type'] = contentType;
    const res = await fetch(`${base}/v1/files${query}`, { method: 'POST', headers, body });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  async function uploadAs(who: string, data: Buffer, query = ''): Promise<string> {
    const { status, json } = await upload(who, data, 'application/octet-stream', query);
    assert.equal(status, 201, JSON.stringify(json));
    return String(json.id);
  }

  const download = (who: string, id: string, headers: Record<string, string> = {}) => fetch(`${base}/v1/files/${id}`, { headers: { ...auth(who), ...headers } });

  /** Every blob under the files folder (temporary ones too). */
  const blobsOnDisk = () => readdirSync(root).flatMap((d) => readdirSync(join(root, d)));

  const errorLines = () => capture.lines.map((l) => JSON.parse(l) as { level: number; msg: string; id?: string }).filter((l) => l.level >= 50);

  /** A raw upload sent piece by piece without Content-Length (chunked): the limit must stop it as it arrives. */
  function streamUpload(who: string, total: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const url = new URL(`${base}/v1/files`);
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...auth(who), 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } });
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', (err) => (answered ? undefined : reject(err)));
      let sent = 0;
      const pump = () => {
        while (sent < total && !answered) {
          sent += 16_384;
          if (!req.write(randomBytes(16_384))) return void req.once('drain', pump);
        }
        if (!answered) req.end();
      };
      pump();
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'softswitch-file-routes-'));
    root = join(dir, 'files');
    const files = new EncryptedFiles(new LocalBlobStore(root, silentLogger()), new Envelope(randomBytes(32)));
    app = await startHttpApp(['alice', 'bob', 'carol'], () => fileRoutes({
      files, index, mayRead: index.mayRead, mayPost: index.mayPost, maxFileSize: MAX, fileTypes: TYPES, logger: capture.logger,
    }));
    base = app.base;
  });

  after(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a raw upload with its type, answers 201 with the id and an absolute URL, and keeps only ciphertext on disk', async () => {
    const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.from('a picture of the sea '.repeat(200))]);
    const { status, json } = await upload('alice', png, 'image/png', '?conversation=conv-ab&name=sea.png');
    assert.equal(status, 201, JSON.stringify(json));
    assert.match(String(json.id), /^[A-Za-z0-9_-]{22}$/);
    assert.equal(json.url, `${base}/v1/files/${String(json.id)}`);
    assert.deepEqual({ size: json.size, contentType: json.contentType, name: json.name }, { size: png.length, contentType: 'image/png', name: 'sea.png' });
    const row = index.rows.get(String(json.id))!;
    assert.equal(row.owner, 'alice@example.com');
    assert.deepEqual([...index.links.get(row.id)!], ['conv-ab']);
    const onDisk = readFileSync(join(root, row.location));
    assert.equal(onDisk.indexOf(Buffer.from('a picture of the sea')), -1);
    assert.notDeepEqual(onDisk.subarray(FILE_HEADER_BYTES, FILE_HEADER_BYTES + png.length), png);
  });

  it('GET answers a member of the conversation the file, with its type, length, ranges, disposition and private caching', async () => {
    const text = Buffer.from('minutes of the meeting: ünïcödé too\n'.repeat(50));
    const { json } = await upload('alice', text, 'text/plain; charset=utf-8', `?conversation=conv-ab&name=${encodeURIComponent('notes "2026".txt')}`);
    const res = await download('bob', String(json.id));
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), text);
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(res.headers.get('content-length'), String(text.length));
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('cache-control'), 'private');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('content-disposition'), `inline; filename="notes _2026_.txt"; filename*=UTF-8''notes%20%222026%22.txt`);
    assert.equal((await download('alice', String(json.id))).status, 200, 'the owner');
    assert.equal((await download('admin', String(json.id))).status, 200, 'an admin');
  });

  it('answers 404 to a user who is not a member, as to an unknown id', async () => {
    const id = await uploadAs('alice', randomBytes(1000), '?conversation=conv-ab');
    const stranger = await download('carol', id);
    assert.equal(stranger.status, 404);
    assert.deepEqual(await stranger.json(), { code: 'API_ERR_NOT_FOUND', message: 'no such file' });
    assert.equal((await download('carol', 'A'.repeat(22))).status, 404);
    assert.equal((await download('carol', '..%2F..%2Fetc')).status, 404);
    const unlinked = await uploadAs('alice', randomBytes(10));
    assert.equal((await download('bob', unlinked)).status, 404, 'not linked to any conversation: the owner only');
    assert.equal((await fetch(`${base}/v1/files/${id}`)).status, 401, 'no token');
  });

  it('takes multipart/form-data: the first file field, its name and type', async () => {
    const voice = randomBytes(70_000);
    const form = new FormData();
    form.append('caption', 'listen');
    form.append('file', new Blob([voice], { type: 'audio/ogg' }), 'voice note é.ogg');
    const { status, json } = await upload('alice', form, undefined, '?conversation=conv-ab');
    assert.equal(status, 201, JSON.stringify(json));
    assert.deepEqual({ size: json.size, contentType: json.contentType, name: json.name }, { size: voice.length, contentType: 'audio/ogg', name: 'voice note é.ogg' });
    const res = await download('bob', String(json.id));
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), voice);
    assert.equal(res.headers.get('content-disposition'), `inline; filename="voice note _.ogg"; filename*=UTF-8''voice%20note%20%C3%A9.ogg`);
  });

  it('serves byte ranges at chunk boundaries with 206 and Content-Range (RFC 9110 §14)', async () => {
    const id = await uploadAs('alice', big, '?conversation=conv-ab');
    const size = big.length;
    const cases: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 0],
      [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
      [`bytes=${CHUNK_BYTES - 1}-${CHUNK_BYTES}`, CHUNK_BYTES - 1, CHUNK_BYTES],
      ['bytes=-500', size - 500, size - 1],
      [`bytes=${2 * CHUNK_BYTES}-`, 2 * CHUNK_BYTES, size - 1],
      [`bytes=100-${size + 1000}`, 100, size - 1],
      [`bytes=-${size + 5}`, 0, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await download('bob', id, { range });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${size}`, range);
      assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), big.subarray(start, end + 1), range);
    }
  });

  it('answers 416 with Content-Range: bytes */size to a range past the end, and the whole file to a Range it ignores', async () => {
    const id = await uploadAs('alice', big, '?conversation=conv-ab');
    for (const range of [`bytes=${big.length}-`, `bytes=${big.length + 10}-${big.length + 20}`, 'bytes=-0']) {
      const res = await download('bob', id, { range });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get('content-range'), `bytes */${big.length}`, range);
      assert.deepEqual(await res.json(), { code: 'API_ERR_RANGE', message: 'range not satisfiable' }, range);
    }
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-3']) {
      const res = await download('bob', id, { range });
      assert.equal(res.status, 200, range);
      assert.equal(Buffer.from(await res.arrayBuffer()).length, big.length, range);
    }
    const stale = await download('bob', id, { range: 'bytes=0-9', 'if-range': '"another"' });
    assert.equal(stale.status, 200, 'If-Range with another validator: the whole file');
    await stale.arrayBuffer();
    const fresh = await download('bob', id, { range: 'bytes=0-9', 'if-range': `"${id}"` });
    assert.equal(fresh.status, 206);
    await fresh.arrayBuffer();
  });

  it('answers 413 API_ERR_TOO_LARGE to a file over messaging.maxFileSize and keeps nothing: declared, streamed, or multipart; up to it, above http.bodyLimit, is taken', async () => {
    const rows = index.rows.size;
    const blobs = blobsOnDisk().sort();
    const declared = await upload('alice', randomBytes(MAX + 1), 'application/octet-stream');
    assert.equal(declared.status, 413);
    assert.deepEqual(declared.json, { code: 'API_ERR_TOO_LARGE', message: `the file is larger than ${MAX} bytes` });
    assert.equal(await streamUpload('alice', MAX + 100_000), 413);
    const form = new FormData();
    form.append('file', new Blob([randomBytes(MAX + 1)], { type: 'image/jpeg' }), 'huge.jpg');
    const multi = await upload('alice', form, undefined);
    assert.equal(multi.status, 413);
    assert.equal(multi.json.code, 'API_ERR_TOO_LARGE');
    assert.equal(index.rows.size, rows);
    assert.deepEqual(blobsOnDisk().sort(), blobs, 'no blob, not even a temporary one');
    const exact = await upload('alice', randomBytes(MAX), 'application/octet-stream');
    assert.ok(MAX > DEFAULT_BODY_LIMIT, 'the file is larger than the JSON routes may take');
    assert.equal(exact.status, 201, 'exactly the limit is fine');
    const exactForm = new FormData();
    exactForm.append('file', new Blob([randomBytes(MAX)], { type: 'image/jpeg' }), 'big.jpg');
    const exactMulti = await upload('alice', exactForm, undefined);
    assert.equal(exactMulti.status, 201, 'exactly the limit is fine in multipart too');
    assert.equal(exactMulti.json.size, MAX);
  });

  it('answers 415 API_ERR_UNSUPPORTED_TYPE to a type outside messaging.fileTypes, or none, and keeps nothing', async () => {
    const rows = index.rows.size;
    const blobs = blobsOnDisk().length;
    assert.deepEqual(await upload('alice', Buffer.from('<script>alert(1)</script>'), 'text/html'), {
      status: 415, json: { code: 'API_ERR_UNSUPPORTED_TYPE', message: 'content type text/html is not accepted (messaging.fileTypes)' },
    });
    assert.equal((await upload('alice', Buffer.from('{"a":1}'), 'application/json')).status, 415);
    assert.equal((await upload('alice', Buffer.from('x'), 'not a type')).status, 415);
    const res = await fetch(`${base}/v1/files`, { method: 'POST', headers: auth('alice'), body: new Uint8Array([1, 2, 3]) });
    assert.equal(res.status, 415, 'no Content-Type');
    const form = new FormData();
    form.append('file', new Blob(['<svg/>'], { type: 'application/x-sh' }), 'run.sh');
    assert.equal((await upload('alice', form, undefined)).status, 415);
    assert.equal(index.rows.size, rows);
    assert.equal(blobsOnDisk().length, blobs);
  });

  it('refuses an upload with an admin token (403 AUTH_ERR_SCOPE: files belong to a user) or into a conversation the user is not in (403 CHAT_ERR_FORBIDDEN)', async () => {
    const rows = index.rows.size;
    assert.deepEqual(await upload('admin', Buffer.from('x'), 'text/plain'), { status: 403, json: { code: 'AUTH_ERR_SCOPE', message: 'files belong to a user: upload with a user token' } });
    assert.deepEqual(await upload('alice', Buffer.from('x'), 'text/plain', '?conversation=conv-cd'), { status: 403, json: { code: 'CHAT_ERR_FORBIDDEN', message: 'not a member of that conversation' } });
    assert.equal((await upload('alice', Buffer.from('x'), 'text/plain', '?conversation=nope')).status, 403);
    assert.equal((await upload('alice', Buffer.from('x'), 'text/plain', '?colour=blue')).status, 400);
    assert.equal(index.rows.size, rows);
  });

  it('fails a download whose bytes were changed on disk: 500 before the headers for the first chunk, a cut response later, one error line each', async () => {
    const id = await uploadAs('alice', big, '?conversation=conv-ab');
    const path = join(root, index.rows.get(id)!.location);
    const original = readFileSync(path);

    const first = Buffer.from(original);
    first[FILE_HEADER_BYTES + 10] ^= 0x01;
    writeFileSync(path, first);
    let errors = errorLines().length;
    const early = await download('bob', id);
    assert.equal(early.status, 500);
    assert.deepEqual(await early.json(), { code: 'API_ERR_INTERNAL', message: 'the file cannot be read' });
    assert.equal(errorLines().length, errors + 1);
    assert.equal(errorLines().at(-1)!.id, id);

    const later = Buffer.from(original);
    later[original.length - 30] ^= 0x01; // in the last chunk
    writeFileSync(path, later);
    errors = errorLines().length;
    const cut = await download('bob', id);
    assert.equal(cut.status, 200);
    await assert.rejects(cut.arrayBuffer(), 'the body ends in an error, not in the tampered bytes');
    assert.equal(errorLines().length, errors + 1);
    // A range away from the damage still reads.
    const head = await download('bob', id, { range: 'bytes=0-99' });
    assert.equal(head.status, 206);
    assert.deepEqual(Buffer.from(await head.arrayBuffer()), big.subarray(0, 100));
    // No message text or key material in any log line.
    assert.ok(!capture.lines.join('').includes(big.subarray(0, 16).toString('hex')));
  });

  it('DELETE: the owner or an admin (204); a member who is not the owner 403; anyone else 404', async () => {
    const id = await uploadAs('alice', randomBytes(5000), '?conversation=conv-ab');
    const location = index.rows.get(id)!.location;
    const del = (who: string, what = id) => fetch(`${base}/v1/files/${what}`, { method: 'DELETE', headers: auth(who) });
    assert.equal((await del('carol')).status, 404);
    assert.equal((await del('bob')).status, 403);
    assert.equal((await del('alice')).status, 204);
    assert.equal(index.rows.has(id), false);
    assert.throws(() => readFileSync(join(root, location)), /ENOENT/);
    assert.equal((await download('alice', id)).status, 404);
    assert.equal((await del('alice')).status, 404);
    const other = await uploadAs('alice', randomBytes(10));
    assert.equal((await del('admin', other)).status, 204);
  });

  it('parseRange reads the three forms of one byte range and ignores the rest', () => {
    assert.deepEqual(parseRange('bytes=0-499', 1000), { start: 0, end: 499 });
    assert.deepEqual(parseRange('bytes=500-', 1000), { start: 500, end: 999 });
    assert.deepEqual(parseRange('bytes=-200', 1000), { start: 800, end: 999 });
    assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-0', 0), 'unsatisfiable');
    assert.equal(parseRange('bytes=-', 1000), undefined);
    assert.equal(parseRange('bytes=0-1, 3-4', 1000), undefined);
    assert.equal(parseRange(undefined, 1000), undefined);
  });
});
