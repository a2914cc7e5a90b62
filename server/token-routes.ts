/**
 * Admin tokens as a REST resource, the HTTP twin of `softswitch token create|list|revoke`
 * (cli/token-commands.ts), mounted with `http.routes(tokenRoutes(store.tokens))`: admin tokens only.
 *
 *   GET    /tokens                          { tokens: [...] }  never a secret (the store keeps only SHA-256s)
 *   POST   /tokens { name, expires? }       201 { token, ... }  the secret, shown this once (Cache-Control: no-store)
 *   DELETE /tokens/:id                      204  (404); the servers stop taking it within 5 s (their token cache)
 *
 * `expires` is the CLI's `--expires` (`30d`, `12h`, `45m`, `90s` or `never`; default 90d), so an automation can
 * rotate its own token: create the next one, switch, revoke the old one. Names starting with `cli-` are the CLI's own
 * short-lived tokens: listed (an operator sees everything that can call the API) but not creatable here.
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { Refusal, errors, isoTime, jsonSchema, noContent, parseInput, response } from '../platform/http/index.js';
import { type AdminToken, type AdminTokenRepository, StoreError } from '../platform/store/index.js';
import { CLI_TOKEN_PREFIX, CliError, parseExpires } from './cli/index.js';

const DEFAULT_EXPIRES = '90d';

const schemas = {
  create: z.strictObject({
    // The store says what a name may be (checkTokenName: a letter, then letters, digits, ".", "_" or "-").
    name: z.string().min(1, 'must not be empty').max(64).describe('1 to 64 letters, digits, ".", "_" or "-", starting with a letter')
      .refine((n) => !n.startsWith(CLI_TOKEN_PREFIX), `names starting with "${CLI_TOKEN_PREFIX}" are kept for the tokens the CLI makes for itself`),
    expires: z.string().max(16).optional().describe('30d, 12h, 45m, 90s or never (default 90d), as `softswitch token create --expires`'),
  }),
  id: z.strictObject({ id: z.string().regex(/^[1-9][0-9]{0,15}$/, 'expected a token id (GET /v1/tokens)').transform(Number) }),
};

const tokenEntry = z.object({
  id: z.number().int(),
  name: z.string(),
  createdAt: isoTime,
  expiresAt: isoTime.optional().describe('absent: never expires'),
  lastUsedAt: isoTime.optional().describe('the last request it authenticated (recorded at most every 5 s)'),
  expired: z.boolean(),
});

const tags = ['tokens'];
const docs: Record<'list' | 'create' | 'revoke', FastifySchema> = {
  list: {
    summary: 'The admin tokens (never their secret)', tags,
    response: { 200: response(z.object({ tokens: z.array(tokenEntry) }), 'every admin token, the CLI\'s own short-lived ones included') },
  },
  create: {
    summary: 'Create an admin token', tags, body: jsonSchema(schemas.create),
    description: 'The answer holds the token itself, this once: the store keeps only its SHA-256. `softswitch token create` does the same.',
    response: {
      201: response(tokenEntry.extend({ token: z.string().describe('the secret: send it as Authorization: Bearer …') }), 'the token created'),
      ...errors({ 400: 'a malformed body, name or expiry', 409: 'a token has that name' }),
    },
  },
  revoke: {
    summary: 'Revoke an admin token', tags, params: jsonSchema(z.object({ id: z.string() })),
    description: 'The token is deleted; servers that checked it in the last 5 s take it until their cache forgets it, as after `softswitch token revoke`.',
    response: { 204: noContent, ...errors({ 400: 'a malformed id', 404: 'no such token' }) },
  },
};

function tokenJson(t: AdminToken, now: number) {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: t.id, name: t.name, createdAt: iso(t.createdAt)!, expiresAt: iso(t.expiresAt), lastUsedAt: iso(t.lastUsedAt),
    expired: t.expiresAt !== undefined && t.expiresAt <= now,
  };
}

export function tokenRoutes(tokens: AdminTokenRepository, now: () => number = Date.now): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/tokens', { schema: docs.list }, async () => {
      const t = now();
      return { tokens: (await tokens.list()).map((k) => tokenJson(k, t)) };
    });

    app.post('/tokens', { schema: docs.create }, async (req, reply) => {
      const body = parseInput(schemas.create, req.body, 'body');
      let lifetime: number | undefined;
      try {
        lifetime = parseExpires(body.expires ?? DEFAULT_EXPIRES);
      } catch (err) {
        if (err instanceof CliError) throw new Refusal(400, `expires: ${JSON.stringify(body.expires)} is not valid: expected a number and s, m, h or d (30d, 12h), up to 3650d, or never`);
        throw err;
      }
      const t = now();
      const created = await tokens.create({ name: body.name, expiresAt: lifetime === undefined ? undefined : t + lifetime }).catch((err: unknown) => {
        if (err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE') throw new Refusal(409, `a token is named ${JSON.stringify(body.name)}`);
        if (err instanceof TypeError) throw new Refusal(400, `name: ${err.message}`);
        throw err;
      });
      return reply.code(201).header('cache-control', 'no-store').send({ ...tokenJson(created.record, t), token: created.token });
    });

    app.delete('/tokens/:id', { schema: docs.revoke }, async (req, reply) => {
      const { id } = parseInput(schemas.id, req.params, 'id');
      await tokens.revoke(id).catch((err: unknown) => {
        if (err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND') throw new Refusal(404, `no token ${id}`);
        throw err;
      });
      return reply.code(204).send();
    });
  };
}
