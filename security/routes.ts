/**
 * The admin API of the ban list, mounted under `/v1/` (admin token required, platform/http):
 *   GET    /v1/bans               the bans in force
 *   POST   /v1/bans               {"address": "203.0.113.5", "seconds": 3600, "reason": "manual"} bans by hand
 *   DELETE /v1/bans/:address      lifts a ban (all workers; `softswitch ban lift`)
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { apiError, errors, isoTime, jsonSchema, response } from '../platform/http/index.js';
import type { BanList } from './ban-list.js';

const banBody = z.strictObject({
  address: z.string().refine((a) => isIP(a) !== 0, 'must be an IP address'),
  seconds: z.number().int().min(1).max(31_536_000).default(3600),
  reason: z.string().min(1).max(64).default('manual'),
});

const ban = z.object({ address: z.string(), reason: z.string(), since: isoTime, until: isoTime });

const schemas: Record<'list' | 'ban' | 'lift', FastifySchema> = {
  list: {
    summary: 'The bans in force', tags: ['bans'],
    response: { 200: response(z.object({ bans: z.array(ban) }), 'the bans, with when they started and end') },
  },
  ban: {
    summary: 'Ban an address by hand', tags: ['bans'],
    body: jsonSchema(banBody),
    response: { 201: response(z.object({ ok: z.literal(true), ban }), 'banned'), ...errors({ 400: 'the body is malformed (the error names the field)' }) },
  },
  lift: {
    summary: 'Lift a ban (on every worker; softswitch ban lift)', tags: ['bans'],
    params: jsonSchema(z.object({ address: z.string().describe('an IPv4 or IPv6 address') })),
    response: { 200: response(z.object({ ok: z.literal(true) }), 'lifted'), ...errors({ 400: 'not an IP address', 404: 'the address is not banned' }) },
  },
};

export function banRoutes(bans: BanList): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/bans', { schema: schemas.list }, async () => ({ bans: bans.list().map(toJson) }));
    app.post('/bans', { schema: schemas.ban }, async (req, reply) => {
      const parsed = banBody.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        return apiError(reply, 400, `${issue.path.join('.') || 'body'}: ${issue.message}`);
      }
      return reply.code(201).send({ ok: true, ban: toJson(bans.ban(parsed.data.address, parsed.data.seconds, parsed.data.reason)) });
    });
    app.delete<{ Params: { address: string } }>('/bans/:address', { schema: schemas.lift }, async (req, reply) => {
      const { address } = req.params;
      if (isIP(address) === 0) return apiError(reply, 400, `${JSON.stringify(address)} is not an IP address`);
      const lifted = bans.lift(address);
      return lifted ? reply.code(200).send({ ok: true }) : apiError(reply, 404, `${address} is not banned here`);
    });
  };
}

function toJson(b: { address: string; reason: string; since: number; until: number }) {
  return { address: b.address, reason: b.reason, since: new Date(b.since).toISOString(), until: new Date(b.until).toISOString() };
}
