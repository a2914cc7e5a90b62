/**
 * Chat files over HTTP, the XEP-0363 "slot" model: an app uploads the file first, gets its URL, and sends
 * that URL in a message. Mounted with `http.routes(fileRoutes(deps), { access: 'user' })` (platform/http):
 *
 *   POST /v1/files[?conversation=<id>][&name=<file name>]
 *       the body is the file, raw with its Content-Type, or multipart/form-data (the first file field, its
 *       filename and type); `conversation` links the file to a conversation the user is a member of (403
 *       otherwise). Over messaging.maxFileSize → 413, a type outside messaging.fileTypes → 415, nothing
 *       kept. 201 `{ id, url, size, contentType, name? }`. Only a user token uploads: a file has an owner.
 *   GET /v1/files/:id
 *       the file, to an admin, its owner, or a member of a conversation it was linked to; to anyone else
 *       404, as if it did not exist. One byte range (RFC 9110 §14.2: `bytes=a-b`, `a-`, `-n`) → 206 with
 *       Content-Range, a range past the end → 416 whose Content-Range gives the size (unsatisfied-range, §14.4, §15.5.17).
 *   DELETE /v1/files/:id
 *       its owner or an admin → 204.
 *
 * The bytes are stored encrypted (file-store.ts) and decrypted per 64 KiB chunk, so a Range read of a long
 * voice note costs only the chunks it touches. A file whose stored bytes do not authenticate is never
 * served: the first chunk is decrypted before the headers go out (500 then), and a later bad chunk ends
 * the response early; either way one error line is logged.
 *
 * Uploaded content is served from the API's own origin, so a download forbids sniffing and runs any
 * active content (an SVG with script, an HTML file named .txt) sandboxed without scripts.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import { type ApiErrorCode, type ApiErrorStatus, apiError, errors, jsonSchema, noContent, principalOf, response } from '../platform/http/index.js';
import type { FileRecord, MessageRepository } from '../platform/store/index.js';
import { categoryLogger, type Logger } from '../src/log/index.js';
import { EnvelopeError } from './envelope.js';
import { type EncryptedFiles, FileStoreError } from './file-store.js';

export interface FileRouteDeps {
  files: EncryptedFiles;
  /** The store's file rows (MessageRepository's file methods). */
  index: Pick<MessageRepository, 'addFile' | 'getFile' | 'linkFile' | 'deleteFile'>;
  /** May this user read the file (owner, or member of a conversation a message linked it to)? */
  mayRead(user: string, file: FileRecord): Promise<boolean>;
  /** May this user link a file to this conversation (is a member)? */
  mayPost(user: string, conversationId: string): Promise<boolean>;
  maxFileSize: number;
  /** `image/*` style allow list (messaging.fileTypes). */
  fileTypes: string[];
  logger: Logger;
}

/** 16 random bytes, base64url. */
const FILE_ID = /^[A-Za-z0-9_-]{22}$/;
/** `type/subtype` and optional parameters (RFC 9110 §8.3.1). */
const MEDIA_TYPE = /^\s*([a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+)\s*(;.*)?$/i;
const MAX_NAME = 255;

const uploadQuery = z.strictObject({
  conversation: z.string().min(1).max(200).optional(),
  name: z.string().max(1024).optional(),
});

const tags = ['files'];
const params = jsonSchema(z.object({ id: z.string().describe('the file\'s id, from its upload') }));
const docs: Record<'upload' | 'download' | 'remove', FastifySchema> = {
  upload: {
    summary: 'Upload a file (a user token): then send its URL in a message',
    description: 'The body is the file, raw with its Content-Type, or multipart/form-data (the first file field). Over messaging.maxFileSize: 413; a type outside messaging.fileTypes: 415.',
    tags, querystring: jsonSchema(uploadQuery),
    response: {
      201: response(z.object({ id: z.string(), url: z.string(), size: z.number().int(), contentType: z.string(), name: z.string().optional() }), 'stored'),
      ...errors({
        400: 'a malformed query or body', 403: 'an admin token, or not a member of the conversation', 413: 'the file is too large', 415: 'the content type is not accepted',
      }),
    },
  },
  download: {
    summary: 'Download a file (one byte range at most, RFC 9110 §14)',
    tags, params,
    response: {
      200: { description: 'the file, with its own Content-Type', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
      206: { description: 'the range asked for, with Content-Range', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
      ...errors({ 404: 'no such file, or not visible to this user', 416: 'the range is past the end (Content-Range gives the size)', 500: 'the stored file does not authenticate' }),
    },
  },
  remove: {
    summary: 'Delete a file (its owner or an admin)', tags, params,
    response: { 204: noContent, ...errors({ 403: 'not the owner', 404: 'no such file, or not visible to this user' }) },
  },
};

export function newFileId(): string {
  return randomBytes(16).toString('base64url');
}

/** `image/png; x=y` → `image/png`; undefined when it is not a media type. */
export function mediaTypeOf(header: string | undefined): string | undefined {
  const m = header === undefined ? null : MEDIA_TYPE.exec(header);
  return m === null ? undefined : m[1]!.toLowerCase();
}

/** Is `type` (lower-case `type/subtype`) on the allow list, exactly or by a `type/*` entry? */
export function typeAllowed(type: string, allowList: readonly string[]): boolean {
  const major = type.slice(0, type.indexOf('/'));
  return allowList.some((entry) => entry === type || (entry.endsWith('/*') && entry.slice(0, -2) === major));
}

/** A file name as the uploader gave it, cut to its last path segment, without control characters; undefined when nothing is left. */
export function cleanFileName(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const base = name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1).replace(/[\u0000-\u001f\u007f]/g, '').trim();
  const cut = [...base].slice(0, MAX_NAME).join('');
  return cut === '' || cut === '.' || cut === '..' ? undefined : cut;
}

/** RFC 6266 §4: `inline`, with an ASCII `filename` for old clients and the UTF-8 `filename*` (RFC 8187). */
export function contentDisposition(name: string | undefined): string {
  if (name === undefined) return 'inline';
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `inline; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * One byte range of a representation of `size` bytes (RFC 9110 §14.1.2): `{ start, end }` inclusive,
 * `'unsatisfiable'`, or undefined to ignore the header and send everything (a header that is not one
 * bytes range: several ranges, another unit, bad syntax — §14.2 lets a server ignore Range).
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    // A suffix: the last n bytes (all of them when n is larger than the file).
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) return undefined;
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  // `b < a` is not a valid range (§14.1.1): ignored, like any other bad syntax.
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || last < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(last, size - 1) };
}

function fileJson(record: FileRecord, url: string): Record<string, unknown> {
  return { id: record.id, url, size: record.size, contentType: record.contentType, ...(record.name === undefined ? {} : { name: record.name }) };
}

const refuse = (reply: FastifyReply, status: ApiErrorStatus, message: string, code?: ApiErrorCode) => apiError(reply, status, message, code);

/** What an upload carries, from a raw body or a multipart part. */
interface Upload {
  stream: Readable;
  contentType: string | undefined;
  name: string | undefined;
  /** After the stream ended: did the multipart parser cut it at its limit? */
  truncated(): boolean;
}

export function fileRoutes(deps: FileRouteDeps): (app: FastifyInstance) => void {
  const log = categoryLogger(deps.logger, 'messaging');
  const maxSize = deps.maxFileSize;

  /** Who may see the file: an admin, its owner, or whom mayRead allows. */
  async function visible(req: FastifyRequest, record: FileRecord): Promise<boolean> {
    const principal = principalOf(req);
    if (principal.kind === 'admin') return true;
    return record.owner === principal.user || (await deps.mayRead(principal.user, record));
  }

  async function find(req: FastifyRequest<{ Params: { id: string } }>): Promise<FileRecord | undefined> {
    if (!FILE_ID.test(req.params.id)) return undefined;
    const record = await deps.index.getFile(req.params.id);
    return record !== undefined && (await visible(req, record)) ? record : undefined;
  }

  return (app) => {
    // This scope takes any body as a stream: the file is encrypted as it arrives, never held whole in
    // memory (Fastify's own JSON and text parsers would buffer it, up to bodyLimit).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    // One more byte than the limit: the upload is then seen to be too large by put(), which keeps nothing.
    void app.register(multipart, { limits: { fileSize: maxSize + 1, files: 1, fields: 10, fieldSize: 1024, parts: 20, headerPairs: 100 } });

    app.post('/files', { schema: docs.upload }, async (req, reply) => {
      const principal = principalOf(req);
      if (principal.kind !== 'user') return refuse(reply, 403, 'files belong to a user: upload with a user token');
      const user = principal.user;
      const parsed = uploadQuery.safeParse(req.query ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const reason = issue.code === 'unrecognized_keys' ? `unknown parameter(s) ${issue.keys.join(', ')}` : issue.message;
        return refuse(reply, 400, `${issue.path.join('.') || 'query'}: ${reason}`);
      }
      const conversation = parsed.data.conversation;
      if (conversation !== undefined && !(await deps.mayPost(user, conversation))) {
        return refuse(reply, 403, 'not a member of that conversation', 'CHAT_ERR_FORBIDDEN');
      }

      let upload: Upload;
      if (req.isMultipart()) {
        let part: Awaited<ReturnType<FastifyRequest['file']>>;
        try {
          part = await req.file();
        } catch (err) {
          const status = (err as { statusCode?: number }).statusCode;
          return refuse(reply, status === 413 ? 413 : 400, `multipart body: ${(err as Error).message}`);
        }
        if (part === undefined) return refuse(reply, 400, 'multipart body: no file field');
        upload = { stream: part.file, contentType: part.mimetype, name: cleanFileName(part.filename), truncated: () => part.file.truncated };
      } else {
        const declared = Number(req.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxSize) {
          return refuse(reply.header('connection', 'close'), 413, `the file is larger than ${maxSize} bytes`);
        }
        if (!(req.body instanceof Readable)) return refuse(reply, 400, 'no file in the body');
        upload = { stream: req.body, contentType: req.headers['content-type'], name: cleanFileName(parsed.data.name), truncated: () => false };
      }
      const contentType = mediaTypeOf(upload.contentType);
      if (contentType === undefined || !typeAllowed(contentType, deps.fileTypes)) {
        return refuse(reply.header('connection', 'close'), 415, `content type ${contentType ?? '(none)'} is not accepted (messaging.fileTypes)`);
      }

      const id = newFileId();
      let stored: Awaited<ReturnType<EncryptedFiles['put']>>;
      try {
        stored = await deps.files.put(id, upload.stream, maxSize);
      } catch (err) {
        if (err instanceof FileStoreError && err.code === 'MESSAGING_ERR_TOO_LARGE') {
          // The rest of the body is not read: the connection closes after the answer.
          return refuse(reply.header('connection', 'close'), 413, `the file is larger than ${maxSize} bytes`);
        }
        throw err;
      }
      if (upload.truncated()) {
        await deps.files.remove(stored.location);
        return refuse(reply.header('connection', 'close'), 413, `the file is larger than ${maxSize} bytes`);
      }
      const record: FileRecord = {
        id, owner: user, contentType, size: stored.size, wrappedKey: stored.wrappedKey, location: stored.location, createdAt: Date.now(),
        ...(upload.name === undefined ? {} : { name: upload.name }),
      };
      try {
        await deps.index.addFile(record);
        if (conversation !== undefined) await deps.index.linkFile(id, conversation);
      } catch (err) {
        // No row, no bytes: a file nobody can name is removed now rather than left for ever.
        await deps.index.deleteFile(id).catch(() => {});
        await deps.files.remove(stored.location).catch(() => {});
        throw err;
      }
      log.info({ id, owner: user, size: stored.size, contentType, ...(conversation === undefined ? {} : { conversation }) }, 'chat file stored');
      return reply.code(201).send(fileJson(record, `${req.protocol}://${req.host}/v1/files/${id}`));
    });

    app.get<{ Params: { id: string } }>('/files/:id', { schema: docs.download }, async (req, reply) => {
      const record = await find(req);
      if (record === undefined) return refuse(reply, 404, 'no such file');
      const etag = `"${record.id}"`;
      // A file never changes under its id: its id is a strong validator (RFC 9110 §8.8.3, §13.1.5 If-Range).
      const ifRange = req.headers['if-range'];
      const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, record.size) : undefined;
      void reply
        .header('accept-ranges', 'bytes')
        .header('etag', etag)
        .header('cache-control', 'private')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox");
      if (range === 'unsatisfiable') {
        return refuse(reply.header('content-range', `bytes */${record.size}`), 416, 'range not satisfiable');
      }

      let body: Readable;
      try {
        body = await readVerified(deps.files, record, range);
      } catch (err) {
        log.error({ id: record.id, code: (err as EnvelopeError).code, err: (err as Error).message }, 'chat file cannot be served: its stored bytes do not authenticate or cannot be read');
        return refuse(reply, 500, 'the file cannot be read');
      }
      body.once('error', (err) => {
        log.error({ id: record.id, code: (err as EnvelopeError).code, err: err.message }, 'chat file download cut short: its stored bytes do not authenticate or cannot be read');
      });
      const length = range === undefined ? record.size : range.end - range.start + 1;
      void reply
        .header('content-type', record.contentType)
        .header('content-length', String(length))
        .header('content-disposition', contentDisposition(record.name));
      if (range !== undefined) void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${record.size}`);
      return reply.send(body);
    });

    app.delete<{ Params: { id: string } }>('/files/:id', { schema: docs.remove }, async (req, reply) => {
      const record = await find(req);
      if (record === undefined) return refuse(reply, 404, 'no such file');
      const principal = principalOf(req);
      if (principal.kind === 'user' && principal.user !== record.owner) return refuse(reply, 403, 'only the owner or an admin deletes a file');
      // The row first: once it is gone nobody can reach the bytes, whatever happens to their removal.
      await deps.index.deleteFile(record.id);
      try {
        await deps.files.remove(record.location);
      } catch (err) {
        log.warn({ id: record.id, err: (err as Error).message }, 'chat file deleted, but its bytes could not be removed');
      }
      log.info({ id: record.id, by: principal.kind === 'admin' ? 'admin' : principal.user }, 'chat file deleted');
      return reply.code(204).send();
    });
  };
}

/**
 * The plaintext stream of the range, its first piece already decrypted and authenticated: a file that
 * fails at once (a wrong key, a changed first chunk, a missing blob) throws here, before any header is sent.
 */
async function readVerified(files: EncryptedFiles, record: FileRecord, range: { start: number; end: number } | undefined): Promise<Readable> {
  const source = files.read(record, range);
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    first = await iterator.next();
  } catch (err) {
    source.destroy();
    throw err;
  }
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.done === true) return;
    yield first.value;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  const body = Readable.from(rest(), { objectMode: false });
  body.once('close', () => source.destroy());
  return body;
}
