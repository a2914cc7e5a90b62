/**
 * Users (the subscribers the registrar authenticates) and their devices (their current bindings, RFC 3261
 * §10.3) as REST resources, platform/http prefixes `/v1`. The users are mounted with `http.routes(userRoutes(deps))`:
 * admin tokens only (a user token is 403). The devices are mounted with `http.routes(deviceRoutes(deps), { access:
 * 'user' })`: an app lists its own user's phones and signs a lost one out; a user token naming another user is
 * 403, whether or not that user exists. They are the HTTP twin of `softswitch user` (cli/user-commands.ts) and
 * share its address checks, and answer bindings as the console's /v1/registrations does: the shell, which
 * alone may import other modules at run time (test/unit/layout.test.ts), is where both meet.
 *
 *   GET    /users?domain=&limit=&cursor=   { users: [...], next? }  by domain then username; never a hash or password
 *   POST   /users { user, password }       201 { user }  (400 malformed, 409 exists)
 *   GET    /users/:user                    { user }  (404)
 *   DELETE /users/:user                    204  (404); its devices are unregistered too
 *   PUT    /users/:user/password { password }  204  (404)
 *   PUT    /users/:user/enabled { enabled }    204  (404); disabling unregisters its devices too
 *   GET    /users/:user/devices            { devices: [...] }  the bindings, as GET /v1/registrations
 *   DELETE /users/:user/devices?contact=   204  kicks one device (404 when the user has no such binding)
 *
 * `:user` is `user@domain` as the CLI takes it (server/cli/user-commands.ts): SIP user characters and %HH
 * escapes, the domain a host name or IP address, lower-cased. Like `softswitch user add`, a new user's domain
 * need not be a served one (the store adds it); such a user can register only once the domain is served.
 * Passwords are only hashed (the store keeps HA1s): no route answers or logs one.
 */
import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import { registrationEntry, registrationJson } from '../console/index.js';
import { Refusal, decodeCursor, errors, isoTime, jsonSchema, noContent, pageOf, pageQuery, parseInput, principalOf, response } from '../platform/http/index.js';
import { MAX_PRESENCE_USER, StoreError, type Subscriber, type SubscriberRepository } from '../platform/store/index.js';
import { CliError, formatUserAddress, parseDomain, parseUserAddress, type UserAddress } from './cli/index.js';
import type { Binding } from '../registrar/index.js';

export interface UserRouteDeps {
  subscribers: SubscriberRepository;
  /** A deleted user's presence allow lists go (the CLI's `user del` does the same). */
  forgetPresence(user: string): Promise<unknown>;
  /** A deleted user's meetings go (their links stop working). */
  forgetMeetings?(user: string): Promise<unknown>;
  /** The AoR's unexpired bindings (registrar.lookup). */
  bindings(aor: string): readonly Binding[];
  /** Removes these bindings of the AoR (registrar.locations.update(aor, { remove })). */
  unbind(aor: string, bindings: readonly Binding[]): void;
  /** Reachable only by a push (registrar's isAsleep). */
  isAsleep(binding: Binding): boolean;
  /**
   * The user's password changed or the user is gone: its access tokens are checked against the store at once on this
   * process (UserTokens.forget) rather than when the fingerprint cache expires.
   */
  forgetTokens?(user: string): void;
}

/** Users per page of GET /users by default, and at most. */
export const USER_PAGE = 100;
export const MAX_USER_PAGE = 1000;

/** Passwords are hashed as given; the bound only keeps a request from making the server hash megabytes. */
const password = z.string().min(1, 'must not be empty').max(1024);
const schemas = {
  list: z.strictObject({ domain: z.string().max(253).optional(), ...pageQuery(USER_PAGE, MAX_USER_PAGE) }),
  create: z.strictObject({ user: z.string().max(511).describe('user@domain, e.g. alice@example.com'), password }),
  password: z.strictObject({ password }),
  enabled: z.strictObject({ enabled: z.boolean() }),
  kick: z.strictObject({ contact: z.string().min(1).max(2048).describe('the contact URI of the binding, as GET …/devices shows it') }),
};

const userEntry = z.object({
  user: z.string().describe('user@domain, the user part escaped as in a SIP URI'),
  username: z.string().describe('the user part as text (the digest username)'),
  domain: z.string(),
  enabled: z.boolean(),
  createdAt: isoTime,
  updatedAt: isoTime,
});

const tags = ['users'];
const params = jsonSchema(z.object({ user: z.string().describe('user@domain') }));
const noUser = { 400: 'a malformed user@domain', 404: 'no such user' };
const docs: Record<'list' | 'create' | 'get' | 'remove' | 'password' | 'enabled' | 'devices' | 'kick', FastifySchema> = {
  list: {
    summary: 'The users, of every domain or of one', tags, querystring: jsonSchema(schemas.list),
    description: 'A page of users by domain then username; pass `next` back as `cursor` (with the same `domain`) for the page after.',
    response: {
      200: response(z.object({ users: z.array(userEntry), next: z.string().optional().describe('the cursor of the next page, when there is one') }), 'a page of users'),
      ...errors({ 400: 'a malformed domain, limit or cursor' }),
    },
  },
  create: {
    summary: 'Add a user', tags, body: jsonSchema(schemas.create),
    description: 'As `softswitch user add`: the domain is added to the store when new. The password is hashed (HA1 per digest algorithm) and never stored or answered.',
    response: { 201: response(z.object({ user: userEntry }), 'the user added'), ...errors({ 400: 'a malformed body or user@domain', 409: 'the user exists' }) },
  },
  get: {
    summary: 'One user', tags, params,
    response: { 200: response(z.object({ user: userEntry }), 'the user'), ...errors(noUser) },
  },
  remove: {
    summary: 'Delete a user, unregistering its devices', tags, params,
    description: 'The user\'s bindings go at once (calls to it stop ringing its phones), its presence allow list too, and its access tokens stop working.',
    response: { 204: noContent, ...errors(noUser) },
  },
  password: {
    summary: 'Set a user\'s password', tags, params, body: jsonSchema(schemas.password),
    description: 'The user\'s access and refresh tokens die with the old password (they carry its fingerprint): at once on the worker that answers, within 5 s on the others. ' +
      'Digest authentication (REGISTER, INVITE) takes the new one within 5 s (the credential cache); the devices registered stay registered until they refresh.',
    response: { 204: noContent, ...errors({ ...noUser, 400: 'a malformed body or user@domain' }) },
  },
  enabled: {
    summary: 'Disable or enable a user (keeping it)', tags, params, body: jsonSchema(schemas.enabled),
    description: 'A disabled user fails digest authentication (within 5 s, the credential cache) and cannot sign in; its access and refresh tokens stop working '
      + 'and its devices are unregistered at once (as `softswitch user disable`, which cannot reach the registrar, does not). Enabling lets it register and sign in again.',
    response: { 204: noContent, ...errors({ ...noUser, 400: 'a malformed body or user@domain' }) },
  },
  devices: {
    summary: 'The user\'s registered devices (bindings)', tags, params,
    description: 'An admin token, or the user\'s own access token (an app showing where its user is signed in); another user\'s token is 403.',
    response: {
      200: response(z.object({ devices: z.array(registrationEntry) }), 'the bindings, as GET /v1/registrations lists them'),
      ...errors({ ...noUser, 403: 'a user token named another user' }),
    },
  },
  kick: {
    summary: 'Kick one device: remove its binding', tags, params, querystring: jsonSchema(schemas.kick),
    description: 'The binding goes at once; the device may register again (it still knows the password). ' +
      'An admin token, or the user\'s own access token (signing a lost phone out from another device: change the password too to keep it out); another user\'s token is 403.',
    response: {
      204: noContent,
      ...errors({ 400: 'a malformed user@domain or query', 403: 'a user token named another user', 404: 'no such user, or no binding with that contact' }),
    },
  },
};

/** `user@domain` checked as the CLI checks it (its message says what is wrong). */
function addressOf(text: string): UserAddress {
  try {
    return parseUserAddress(text);
  } catch (err) {
    if (err instanceof CliError) throw new Refusal(400, err.message);
    throw err;
  }
}

function addressParam(req: FastifyRequest): UserAddress {
  return addressOf((req.params as { user: string }).user);
}

/** The `:user` of the path, which a user token may name only when it is its own user (`sub` is user@domain as stored). */
function ownAddressParam(req: FastifyRequest): UserAddress {
  const a = addressParam(req);
  const principal = principalOf(req);
  if (principal.kind === 'user' && principal.user !== `${a.username}@${a.domain}`) throw new Refusal(403, 'a user token reads and kicks only its own devices');
  return a;
}

/** The canonical AoR of the user, as the registrar keys its bindings (aorOf). */
function aorOf(a: UserAddress): string {
  return `sip:${formatUserAddress(a.username, a.domain)}`;
}

/** The store's refusals as answers; anything else is the server's fault (500, logged by the server). */
function fromStore(err: unknown, a: UserAddress): never {
  const address = formatUserAddress(a.username, a.domain);
  if (err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE') throw new Refusal(409, `user ${address} already exists`);
  if (err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND') throw new Refusal(404, `no such user ${address}`);
  // The store refuses what its columns cannot hold (a user part over 255 characters).
  if (err instanceof TypeError) throw new Refusal(400, `invalid address ${JSON.stringify(address)}: ${err.message}`);
  throw err;
}

/** Every field but the HA1s: what the API may say of a subscriber. */
function userJson(s: Subscriber) {
  return {
    user: formatUserAddress(s.username, s.domain),
    username: s.username,
    domain: s.domain,
    enabled: s.enabled,
    createdAt: new Date(s.createdAt).toISOString(),
    updatedAt: new Date(s.updatedAt).toISOString(),
  };
}

/** Refusals, and Fastify's own 4xx (a body that is not JSON, too large), answer as every route does. */
function existingUser(deps: Pick<UserRouteDeps, 'subscribers'>): (a: UserAddress) => Promise<Subscriber> {
  return async (a) => {
    const s = await deps.subscribers.get(a.username, a.domain);
    if (s === undefined) throw new Refusal(404, `no such user ${formatUserAddress(a.username, a.domain)}`);
    return s;
  };
}

/** The users (admin tokens only). */
export function userRoutes(deps: UserRouteDeps): (app: FastifyInstance) => void {
  const existing = existingUser(deps);
  return (app) => {
    // A thrown Refusal, and Fastify's own 4xx (a body that is not JSON, too large), are answered by the
    // server's error handler (platform/http), as on every route.
    app.get('/users', { schema: docs.list }, async (req) => {
      const q = parseInput(schemas.list, req.query, 'query');
      let domain: string | undefined;
      if (q.domain !== undefined) {
        domain = parseDomain(q.domain);
        if (domain === undefined) throw new Refusal(400, `domain: ${JSON.stringify(q.domain)} is not a host name or IP address`);
      }
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, 2);
      const found = await deps.subscribers.list(domain, { after: after && { domain: after[0]!, username: after[1]! }, limit: q.limit + 1 });
      const page = pageOf(found, q.limit, (s) => [s.domain, s.username]);
      return { users: page.items.map(userJson), ...(page.next === undefined ? {} : { next: page.next }) };
    });

    app.post('/users', { schema: docs.create }, async (req, reply) => {
      const body = parseInput(schemas.create, req.body, 'body');
      const a = addressOf(body.user);
      const added = await deps.subscribers.add({ ...a, password: body.password }).catch((err) => fromStore(err, a));
      return reply.code(201).send({ user: userJson(added) });
    });

    app.get('/users/:user', { schema: docs.get }, async (req) => ({ user: userJson(await existing(addressParam(req))) }));

    app.delete('/users/:user', { schema: docs.remove }, async (req, reply) => {
      const a = addressParam(req);
      await deps.subscribers.remove(a.username, a.domain).catch((err) => fromStore(err, a));
      // Unlike the CLI, which runs beside the server and cannot reach its registrar, the API can: a deleted
      // user's phones would otherwise go on ringing until their bindings expire.
      const aor = aorOf(a);
      const bound = deps.bindings(aor);
      if (bound.length > 0) deps.unbind(aor, bound);
      // A new user made later under the same name must not inherit who could watch the old one.
      const user = `${a.username}@${a.domain}`;
      if (user.length <= MAX_PRESENCE_USER) await deps.forgetPresence(user);
      await deps.forgetMeetings?.(user);
      deps.forgetTokens?.(user);
      return reply.code(204).send();
    });

    app.put('/users/:user/password', { schema: docs.password }, async (req, reply) => {
      const a = addressParam(req);
      const body = parseInput(schemas.password, req.body, 'body');
      await deps.subscribers.setPassword(a.username, a.domain, body.password).catch((err) => fromStore(err, a));
      deps.forgetTokens?.(`${a.username}@${a.domain}`);
      return reply.code(204).send();
    });

    app.put('/users/:user/enabled', { schema: docs.enabled }, async (req, reply) => {
      const a = addressParam(req);
      const { enabled } = parseInput(schemas.enabled, req.body, 'body');
      await deps.subscribers.setEnabled(a.username, a.domain, enabled).catch((err) => fromStore(err, a));
      if (!enabled) {
        const aor = aorOf(a);
        const bound = deps.bindings(aor);
        if (bound.length > 0) deps.unbind(aor, bound);
        deps.forgetTokens?.(`${a.username}@${a.domain}`);
      }
      return reply.code(204).send();
    });
  };
}

/**
 * The devices of a user: an admin's, or a user's own (mount with `access: 'user'`). A user token naming another user
 * is refused before the store is asked, so the answer says nothing of whether that user exists.
 */
export function deviceRoutes(deps: UserRouteDeps): (app: FastifyInstance) => void {
  const existing = existingUser(deps);
  return (app) => {
    app.get('/users/:user/devices', { schema: docs.devices }, async (req) => {
      const a = ownAddressParam(req);
      await existing(a);
      return { devices: deps.bindings(aorOf(a)).map((b) => registrationJson(b, deps.isAsleep(b))) };
    });

    app.delete('/users/:user/devices', { schema: docs.kick }, async (req, reply) => {
      const a = ownAddressParam(req);
      const { contact } = parseInput(schemas.kick, req.query, 'query');
      await existing(a);
      const aor = aorOf(a);
      const kicked = deps.bindings(aor).filter((b) => b.contactUri === contact);
      if (kicked.length === 0) throw new Refusal(404, `${formatUserAddress(a.username, a.domain)} has no device with contact ${contact}`);
      deps.unbind(aor, kicked);
      return reply.code(204).send();
    });
  };
}
