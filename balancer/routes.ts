/**
 * The routing data as REST resources, mounted with `http.routes(routingRoutes(...))` (admin token only;
 * platform/http prefixes `/v1`). The same store rows as `softswitch backend|route|did|trusted`:
 *
 *   GET    /backends               { backends: [...] }, each with its live health from the balancer
 *   POST   /backends               { set, uri, weight?, algorithm? }   201 the backend
 *   DELETE /backends/:id           204
 *   PUT    /backends/:id/enabled   { enabled }   204 (disabled: no new requests; calls in progress go on)
 *   GET    /backend-sets           { sets: [{ name, algorithm }] }
 *   PUT    /backend-sets/:set      { algorithm }   200 the set (404 unknown)
 *   GET    /routes   POST /routes   DELETE /routes/:id          the dialplan
 *   GET    /dids     POST /dids     DELETE /dids/:number        DIDs
 *   GET    /trusted  POST /trusted  DELETE /trusted/:id         trusted sources
 *
 * Inputs are checked with the store's own checks (patterns compile, CIDRs parse, algorithm names, URIs)
 * before anything is written, so a 400 names the field and changes nothing. After each change the server
 * reloads at once (what POST /reload does), so the answer and the next request see the change.
 */
import type { FastifyInstance, FastifyReply, FastifySchema } from 'fastify';
import { z } from 'zod';
import { Refusal, apiError, errors, isoTime, jsonSchema, noContent, parseInput, response } from '../platform/http/index.js';
import {
  BALANCE_ALGORITHMS, StoreError, checkAlgorithm, checkBackendUri, checkDidNumber, checkPattern, checkSetName, checkWeight, parseCidr,
  type BackendRecord, type RoutingRepository,
} from '../platform/store/index.js';
import type { BackendState } from './types.js';

export interface RoutingRoutesDeps {
  routing: RoutingRepository;
  /** The balancer's live backend states (health, calls in progress, failures). */
  states: () => BackendState[];
  /** The reload of POST /reload: this process's balancer, then the other workers. */
  reload: () => Promise<unknown>;
}

/** `base` refined by one of the store's checks (which throw TypeError with the reason). */
function checked<T extends z.ZodString | z.ZodNumber>(check: (value: unknown) => unknown, base: T): T {
  return (base as z.ZodType).superRefine((value, ctx) => {
    try {
      check(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  }) as T;
}

const id = z.string().regex(/^[1-9][0-9]{0,14}$/, 'expected a positive whole number (see the list)').transform(Number);
const optionalText = z.string().max(255).optional();

const inputs = {
  backend: z.strictObject({
    set: checked(checkSetName, z.string()).describe('the set, created (round-robin) when new'),
    uri: checked(checkBackendUri, z.string()).describe('sip: or sips: URI of the backend'),
    weight: checked(checkWeight, z.number()).optional().describe('1 to 1000, for the weighted algorithm (default 1)'),
    algorithm: checked(checkAlgorithm, z.string()).optional().describe(`changes how the set chooses its backend: ${BALANCE_ALGORITHMS.join(', ')}`),
  }),
  enabled: z.strictObject({ enabled: z.boolean() }),
  setAlgorithm: z.strictObject({ algorithm: checked(checkAlgorithm, z.string()).describe(BALANCE_ALGORITHMS.join(', ')) }),
  route: z.strictObject({
    pattern: checked(checkPattern, z.string()).describe('a JavaScript regular expression the whole called number must match'),
    set: checked(checkSetName, z.string()),
    replace: optionalText.describe('the number as it goes out, $1 … groups (empty: as dialled)'),
    priority: z.number().int().min(-2_147_483_647).max(2_147_483_647).optional().describe('lower is tried first (default 0)'),
    description: optionalText,
  }),
  did: z.strictObject({
    number: checked(checkDidNumber, z.string()).describe('E.164 with or without "+", or a short number'),
    username: z.string().min(1).max(255),
    domain: z.string().min(1).max(255),
  }),
  trusted: z.strictObject({
    cidr: checked(parseCidr, z.string()).describe('an address or CIDR block: 10.0.0.5, 10.0.0.0/24, 2001:db8::/32'),
    description: optionalText,
  }),
};

const liveBackend = z.object({
  id: z.number().int(), set: z.string(), algorithm: z.string(), uri: z.string(), weight: z.number().int(), enabled: z.boolean(), createdAt: isoTime,
  health: z.enum(['up', 'down', 'unknown', 'not loaded']).describe('"not loaded": the balancer has not seen this backend yet'),
  activeCalls: z.number().int(), failures: z.number().int(),
});
const setOut = z.object({ name: z.string(), algorithm: z.enum(BALANCE_ALGORITHMS) });
const routeOut = z.object({ id: z.number().int(), pattern: z.string(), replace: z.string(), set: z.string(), priority: z.number().int(), description: z.string() });
const didOut = z.object({ number: z.string(), username: z.string(), domain: z.string() });
const trustedOut = z.object({ id: z.number().int(), cidr: z.string(), description: z.string() });

const idParams = jsonSchema(z.object({ id: z.string().describe('the id, from the list') }));
const badBody = { 400: 'the body is malformed (the error names the field)' };
const badId = { 400: 'not an id', 404: 'no such id' };
const notReloaded = { 503: 'the change is stored, but the reload after it failed: it counts from the next reload' };

/** The list, add and delete routes of a resource; `duplicate` says when the store refuses an add as one (409). */
function docs(tag: string, name: string, item: z.ZodType, body: z.ZodType, duplicate?: string, params = idParams): Record<'list' | 'add' | 'del', FastifySchema> {
  return {
    list: { summary: `The ${name}s`, tags: [tag], response: { 200: response(z.object({ [tag]: z.array(item) }), `every ${name}`) } },
    add: {
      summary: `Add a ${name}`, tags: [tag], body: jsonSchema(body),
      response: { 201: response(item, `the ${name} added; the balancer has reloaded`), ...errors({ ...badBody, ...notReloaded, ...(duplicate === undefined ? {} : { 409: duplicate }) } as Record<number, string>) },
    },
    del: { summary: `Delete a ${name}`, tags: [tag], params, response: { 204: noContent, ...errors({ ...badId, ...notReloaded }) } },
  };
}

const schemas = {
  backends: docs('backends', 'backend', liveBackend, inputs.backend, 'the set has a backend with this URI'),
  routes: docs('routes', 'route', routeOut, inputs.route),
  dids: docs('dids', 'DID', didOut, inputs.did, 'the DID exists', jsonSchema(z.object({ number: z.string().describe('the DID') }))),
  trusted: docs('trusted', 'trusted source', trustedOut, inputs.trusted, 'the address or block is trusted already'),
  enabled: {
    summary: 'Enable or disable a backend (disabled: no new requests; calls in progress go on)', tags: ['backends'],
    params: idParams, body: jsonSchema(inputs.enabled),
    response: { 204: noContent, ...errors({ ...badBody, 404: 'no such backend', ...notReloaded }) },
  } satisfies FastifySchema,
  sets: {
    summary: 'The backend sets and how each chooses its backend', tags: ['backends'],
    response: { 200: response(z.object({ sets: z.array(setOut) }), 'every set, by name') },
  } satisfies FastifySchema,
  setAlgorithm: {
    summary: 'Change how a backend set chooses its backend', tags: ['backends'],
    description: 'As `softswitch backend set SET --algorithm A`. Calls in progress keep their backend; new ones are balanced the new way.',
    params: jsonSchema(z.object({ set: z.string().describe('the set name') })), body: jsonSchema(inputs.setAlgorithm),
    response: { 200: response(setOut, 'the set; the balancer has reloaded'), ...errors({ ...badBody, 404: 'no such set', ...notReloaded }) },
  } satisfies FastifySchema,
};

/** Runs `work`; the store's refusals become 404/409/400 (its TypeError is a value it will not take). */
async function answer(reply: FastifyReply, work: () => Promise<unknown>): Promise<unknown> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND') return apiError(reply, 404, err.message);
    if (err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE') return apiError(reply, 409, err.message);
    if (err instanceof TypeError) return apiError(reply, 400, err.message);
    if (err instanceof Refusal) return apiError(reply, err.status, err.message, err.code);
    throw err;
  }
}

/** A backend as the API shows it: its set's algorithm and the balancer's live view of it. */
function backendJson(b: BackendRecord, algorithm: string | undefined, s: BackendState | undefined): z.input<typeof liveBackend> {
  return {
    id: b.id, set: b.set, algorithm: algorithm ?? 'round-robin', uri: b.uri, weight: b.weight, enabled: b.enabled, createdAt: new Date(b.createdAt).toISOString(),
    health: s?.health ?? 'not loaded', activeCalls: s?.activeCalls ?? 0, failures: s?.failures ?? 0,
  };
}

export function routingRoutes({ routing, states, reload }: RoutingRoutesDeps): (app: FastifyInstance) => void {
  const idOf = (params: unknown): number => parseInput(id, (params as { id?: unknown }).id, 'id');

  /** A change, then the reload, then `status` (201) with what was created or changed (as `show` shows it, after the reload) or 204. */
  const change = async <T>(reply: FastifyReply, work: () => Promise<T>, show: (created: T) => Promise<unknown> = async (c) => c, status = 201): Promise<unknown> => {
    const created = await work();
    try {
      await reload();
    } catch {
      // The reload logs its own failure; the change is stored and the next reload (periodic or POST /reload) takes it.
      throw new Refusal(503, 'saved, but the balancer could not reload (see the server log): the change counts from the next reload');
    }
    return created === undefined ? reply.code(204).send() : reply.code(status).send(await show(created));
  };

  return (app) => {
    app.get('/backends', { schema: schemas.backends.list }, async () => {
      const [sets, backends] = await Promise.all([routing.listSets(), routing.listBackends()]);
      const algorithms = new Map(sets.map((s) => [s.name, s.algorithm]));
      const live = new Map(states().map((s) => [s.id, s]));
      return { backends: backends.map((b) => backendJson(b, algorithms.get(b.set), live.get(b.id))) };
    });

    app.post('/backends', { schema: schemas.backends.add }, (req, reply) => answer(reply, () => change(reply, async () => {
      const body = parseInput(inputs.backend, req.body, 'body');
      const b = await routing.addBackend({ set: body.set, uri: body.uri, weight: body.weight });
      if (body.algorithm !== undefined) await routing.putSet({ name: b.set, algorithm: checkAlgorithm(body.algorithm) });
      return b;
    }, async (b) => {
      // After the reload: the set's algorithm as stored and the balancer's first view of the backend.
      const set = (await routing.listSets()).find((s) => s.name === b.set);
      return backendJson(b, set?.algorithm, states().find((s) => s.id === b.id));
    })));

    app.delete('/backends/:id', { schema: schemas.backends.del }, (req, reply) => answer(reply, () => change(reply, () => routing.removeBackend(idOf(req.params)))));

    app.put('/backends/:id/enabled', { schema: schemas.enabled }, (req, reply) => answer(reply, () => change(reply, async () => {
      const backend = idOf(req.params);
      await routing.setBackendEnabled(backend, parseInput(inputs.enabled, req.body, 'body').enabled);
    })));

    app.get('/backend-sets', { schema: schemas.sets }, async () => ({ sets: await routing.listSets() }));
    app.put<{ Params: { set: string } }>('/backend-sets/:set', { schema: schemas.setAlgorithm }, (req, reply) => answer(reply, async () => {
      const { algorithm } = parseInput(inputs.setAlgorithm, req.body, 'body');
      const name = req.params.set;
      if (!(await routing.listSets()).some((s) => s.name === name)) throw new Refusal(404, `no backend set ${JSON.stringify(name)}`);
      const set = { name, algorithm: checkAlgorithm(algorithm) };
      return change(reply, async () => {
        await routing.putSet(set);
        return set;
      }, undefined, 200);
    }));

    app.get('/routes', { schema: schemas.routes.list }, async () => ({ routes: await routing.listRoutes() }));
    app.post('/routes', { schema: schemas.routes.add }, (req, reply) => answer(reply, () => change(reply, () => {
      const r = parseInput(inputs.route, req.body, 'body');
      return routing.addRoute({ pattern: r.pattern, set: r.set, replace: r.replace ?? '', priority: r.priority ?? 0, description: r.description ?? '' });
    })));
    app.delete('/routes/:id', { schema: schemas.routes.del }, (req, reply) => answer(reply, () => change(reply, () => routing.removeRoute(idOf(req.params)))));

    app.get('/dids', { schema: schemas.dids.list }, async () => ({ dids: await routing.listDids() }));
    app.post('/dids', { schema: schemas.dids.add }, (req, reply) => answer(reply, () => change(reply, async () => {
      const d = parseInput(inputs.did, req.body, 'body');
      await routing.addDid(d);
      return d;
    }, async (d) => (await routing.listDids()).find((x) => x.number === d.number) ?? d)));
    app.delete<{ Params: { number: string } }>('/dids/:number', { schema: schemas.dids.del }, (req, reply) => answer(reply, () => change(reply, () => routing.removeDid(req.params.number))));

    app.get('/trusted', { schema: schemas.trusted.list }, async () => ({ trusted: await routing.listTrusted() }));
    app.post('/trusted', { schema: schemas.trusted.add }, (req, reply) => answer(reply, () => change(reply, () => {
      const t = parseInput(inputs.trusted, req.body, 'body');
      return routing.addTrusted({ cidr: t.cidr, description: t.description ?? '' });
    })));
    app.delete('/trusted/:id', { schema: schemas.trusted.del }, (req, reply) => answer(reply, () => change(reply, () => routing.removeTrusted(idOf(req.params)))));
  };
}
