/**
 * The presence allow lists for the apps and operators, mounted with `http.routes(presenceRoutes(policy,
 * userExists), { access: 'user' })` (platform/http prefixes `/v1`):
 *
 *   GET    /presence/allow?user=            { user, watchers: [...] }   the list, by watcher
 *   PUT    /presence/allow/:watcher?user=   204   (400 malformed, 404 the watcher is no user here)
 *   DELETE /presence/allow/:watcher?user=   204, or 404 when the watcher was not on the list
 *
 * A user token manages its own list: `?user=` may be left out or name the token's user (another user is
 * 403). An admin token must say whose list with `?user=` (400 without it). Under `presence.policy:
 * contacts` the list is who may watch the user; under `same-domain` it is kept but not consulted.
 *
 * Users are `user@domain`, the domain lower-cased (RFC 3261 §19.1.4: the host is case-insensitive, the user
 * part is not), at most 255 characters (the column size, sql/0007_presence.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import { apiError, errors, jsonSchema, noContent, normalizeUser, principalOf, response } from '../platform/http/index.js';
import { MAX_PRESENCE_USER } from '../platform/store/index.js';
import type { PresencePolicy } from './policy.js';

const user = z.string().max(MAX_PRESENCE_USER).regex(/^[^@\s/]+@[^@\s/]+$/, 'expected user@domain').transform(normalizeUser);

const schemas = {
  query: z.strictObject({ user: user.optional() }),
  watcher: user,
};

const tags = ['presence'];
const querystring = jsonSchema(schemas.query);
const params = jsonSchema(z.object({ '*': schemas.watcher.describe('the watcher, user@domain') }));
const refusals = {
  400: 'a malformed user, or an admin token that names no user',
  403: 'a user token named another user',
};
const docs: Record<'list' | 'allow' | 'disallow', FastifySchema> = {
  list: {
    summary: 'Who may watch the user\'s presence (the allow list)', tags, querystring,
    response: { 200: response(z.object({ user: z.string(), watchers: z.array(z.string()) }), 'the list, by watcher'), ...errors(refusals) },
  },
  allow: {
    summary: 'Allow a watcher', tags, querystring, params,
    response: { 204: noContent, ...errors({ ...refusals, 404: 'the watcher (or the user) is no user here' }) },
  },
  disallow: {
    summary: 'Remove a watcher from the list', tags, querystring, params,
    response: { 204: noContent, ...errors({ ...refusals, 404: 'the watcher is not on the list' }) },
  },
};

/**
 * The routes take the watcher as a wildcard (`/presence/allow/*`) rather than `:watcher`: Fastify's router
 * refuses a named parameter over 100 characters (414) before the route runs, while a watcher may have 255;
 * the schema bounds it instead (and refuses a `/` in it).
 */
function watcherOf(req: FastifyRequest): string {
  return parse(schemas.watcher, (req.params as Record<string, unknown>)['*'], 'watcher');
}

/** Thrown by parse(), and for a request that cannot be answered as asked: the status and the reason. */
class Refusal extends Error {
  constructor(readonly status: 400 | 403 | 404, message: string) {
    super(message);
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const reason = issue.code === 'unrecognized_keys' ? `unknown parameter(s) ${issue.keys.join(', ')}` : issue.message;
  throw new Refusal(400, `${issue.path.join('.') || where}: ${reason}`);
}

/** Whose list the request is about: the token's user, or the admin's `?user=`. */
function ownerOf(req: FastifyRequest): string {
  const { user: named } = parse(schemas.query, req.query, 'query');
  const principal = principalOf(req);
  if (principal.kind === 'user') {
    if (named !== undefined && named !== principal.user) throw new Refusal(403, 'a user token manages only its own allow list');
    return principal.user;
  }
  if (named === undefined) throw new Refusal(400, 'user: an admin token must say whose allow list (?user=user@domain)');
  return named;
}

async function answer(reply: FastifyReply, work: () => Promise<unknown>): Promise<unknown> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof Refusal) return apiError(reply, err.status, err.message);
    throw err;
  }
}

export function presenceRoutes(policy: PresencePolicy, userExists: (user: string) => Promise<boolean>): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/presence/allow', { schema: docs.list }, (req, reply) => answer(reply, async () => {
      const owner = ownerOf(req);
      return { user: owner, watchers: await policy.allowed(owner) };
    }));

    app.put('/presence/allow/*', { schema: docs.allow }, (req, reply) => answer(reply, async () => {
      const watcher = watcherOf(req);
      const owner = ownerOf(req);
      // Only users of ours can be on a list: a name that is not one would be a row nobody could use, or
      // one a user created later under that name would inherit.
      if (!(await userExists(watcher))) throw new Refusal(404, `watcher: ${watcher} is not a user here`);
      if (!(await userExists(owner))) throw new Refusal(404, `user: ${owner} is not a user here`);
      await policy.allow(owner, watcher);
      return reply.code(204).send();
    }));

    app.delete('/presence/allow/*', { schema: docs.disallow }, (req, reply) => answer(reply, async () => {
      const watcher = watcherOf(req);
      const owner = ownerOf(req);
      // No userExists check: a watcher deleted since must still be removable.
      if (!(await policy.disallow(owner, watcher))) throw new Refusal(404, `watcher: ${watcher} is not on the allow list`);
      return reply.code(204).send();
    }));
  };
}
