/**
 * One error shape for the whole HTTP API: every refusal answers `{ code, message }`, `code` from API_ERRORS
 * (stable: clients switch on it) and `message` in words (it names the field or parameter for a 400). A route
 * throws a Refusal (the server's error handler answers it) or answers with apiError(); fastify's own errors
 * (bad JSON, body too large, unknown route) take the same shape in http-server.ts. The token endpoint adds
 * RFC 6749 §5.2's `error` and `error_description` beside them.
 */
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';

/**
 * Every code the API answers, with its status and when. A status's generic code is the first listed with
 * it; a service's code keeps its own namespace only where it says more than the status (CHAT_ERR_*).
 */
export const API_ERRORS = {
  API_ERR_INVALID: { status: 400, when: 'a malformed request: the message names the field or parameter and what is wrong with it' },
  AUTH_ERR_INVALID_TOKEN: { status: 401, when: 'no token, or a malformed, unknown, revoked or expired one (WWW-Authenticate says which)' },
  AUTH_ERR_INVALID_GRANT: { status: 401, when: 'the token endpoint: wrong credentials, or a bad refresh token' },
  AUTH_ERR_SCOPE: { status: 403, when: 'the token may not do this: a user token on an admin route or on another user\'s resource' },
  CHAT_ERR_FORBIDDEN: { status: 403, when: 'chat: not a member of the conversation, or not one of its admins' },
  API_ERR_NOT_FOUND: { status: 404, when: 'no such resource (or not one this token may see), or no such route' },
  API_ERR_CONFLICT: { status: 409, when: 'the resource exists already' },
  CHAT_ERR_GROUP_FULL: { status: 409, when: 'chat: the group has as many members as it may' },
  API_ERR_TOO_LARGE: { status: 413, when: 'the body is larger than allowed (http.bodyLimit; files: messaging.maxFileSize)' },
  API_ERR_UNSUPPORTED_TYPE: { status: 415, when: 'the body\'s content type is not accepted' },
  API_ERR_RANGE: { status: 416, when: 'the range is past the end of the file (Content-Range gives its size)' },
  API_ERR_RATE_LIMITED: { status: 429, when: 'too many requests or failed attempts; Retry-After says when to come back' },
  API_ERR_INTERNAL: { status: 500, when: 'the server failed (its log says why)' },
  API_ERR_UNAVAILABLE: { status: 503, when: 'a part the answer needs is not available now; Retry-After, when present, says when to come back' },
} as const satisfies Record<string, { status: number; when: string }>;

export type ApiErrorCode = keyof typeof API_ERRORS;
export type ApiErrorStatus = (typeof API_ERRORS)[ApiErrorCode]['status'];

/** What every refusal answers. */
export interface ApiErrorBody {
  code: string;
  message: string;
}

const GENERIC = new Map<number, ApiErrorCode>();
for (const [code, { status }] of Object.entries(API_ERRORS) as Array<[ApiErrorCode, { status: number }]>) {
  if (!GENERIC.has(status)) GENERIC.set(status, code);
}

/** The generic code of a status (API_ERR_INVALID for a 4xx the catalogue lacks, API_ERR_INTERNAL for a 5xx). */
export function codeOf(status: number): ApiErrorCode {
  return GENERIC.get(status) ?? (status >= 500 ? 'API_ERR_INTERNAL' : 'API_ERR_INVALID');
}

/** The body of a refusal: `code` defaults to the status's generic one. */
export function errorJson(status: number, message: string, code: ApiErrorCode = codeOf(status)): ApiErrorBody {
  return { code, message };
}

/** Answers a refusal: `status` and `{ code, message }`. */
export function apiError(reply: FastifyReply, status: ApiErrorStatus, message: string, code?: ApiErrorCode): FastifyReply {
  return reply.code(status).send(errorJson(status, message, code));
}

/** A request a route cannot answer as asked: thrown, and answered by the server's error handler (or the route's catch). */
export class Refusal extends Error {
  readonly code: ApiErrorCode;

  constructor(readonly status: ApiErrorStatus, message: string, code?: ApiErrorCode) {
    super(message);
    this.code = code ?? codeOf(status);
  }
}

/** `value` as `schema` reads it; a 400 Refusal `field: reason` (or `where: reason` for the whole) otherwise. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const reason = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
  throw new Refusal(400, `${issue.path.join('.') || where}: ${reason}`);
}
