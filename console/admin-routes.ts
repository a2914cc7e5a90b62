/**
 * The admin routes the web console's admin page reads that no service had yet, mounted under `/v1/` (admin
 * token required, platform/http):
 *   GET /v1/registrations   the bindings held (RFC 3261 §10.3): AoR, contact, transport, address, user agent,
 *                           expiry, RFC 5626 instance, RFC 8599 push provider and whether the device sleeps
 *   GET /v1/active-calls    the dialogs not ended yet, oldest first: caller, callee, state, times, media relay
 *
 * Both answer what this process holds: registrations are replicated to every worker, so any worker's list is
 * the whole; a call is held by the worker that forwarded its INVITE (`owner`), so with `--workers N` the list
 * is that worker's calls.
 */
import type { FastifyInstance } from 'fastify';
import type { Binding } from '../registrar/types.js';
import type { DialogSnapshot } from '../src/dialog/types.js';

export interface AdminRouteDeps {
  /** Every unexpired binding. */
  registrations(): readonly Binding[];
  /** Reachable only by a push (registrar's isAsleep). */
  isAsleep(binding: Binding): boolean;
  /** The dialogs not ended yet. */
  activeCalls(): readonly DialogSnapshot[];
}

/** `?user=user@domain` narrows both lists to one user (as caller or callee for calls). */
interface UserQuery {
  Querystring: { user?: string };
}

export function adminRoutes(deps: AdminRouteDeps): (app: FastifyInstance) => void {
  return (app) => {
    app.get<UserQuery>('/registrations', async (req) => {
      const aor = req.query.user === undefined ? undefined : `sip:${req.query.user.toLowerCase()}`;
      const bindings = deps.registrations().filter((b) => aor === undefined || b.aor.toLowerCase() === aor);
      return { registrations: bindings.map((b) => registrationJson(b, deps.isAsleep(b))) };
    });
    app.get<UserQuery>('/active-calls', async (req) => {
      const user = req.query.user?.toLowerCase();
      const calls = deps.activeCalls().filter((d) => user === undefined || [d.caller, d.callee].some((p) => partyUser(p) === user));
      return { calls: calls.map(callJson) };
    });
  };
}

function registrationJson(b: Binding, asleep: boolean) {
  return {
    aor: b.aor,
    contact: b.contactUri,
    transport: b.received.protocol,
    address: `${b.received.address}:${b.received.port}`,
    userAgent: b.userAgent,
    expiresAt: new Date(b.expiresAt).toISOString(),
    updatedAt: new Date(b.updatedAt).toISOString(),
    instance: b.instanceId,
    push: b.push?.provider,
    asleep,
  };
}

function partyUser(p: DialogSnapshot['caller']): string | undefined {
  return p.user === undefined || p.domain === undefined ? undefined : `${p.user}@${p.domain}`.toLowerCase();
}

function callJson(d: DialogSnapshot) {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: d.id,
    callId: d.callId,
    state: d.state,
    direction: d.direction,
    caller: d.caller,
    callee: d.callee,
    answeredBy: d.answeredBy,
    backend: d.backend,
    mediaRelayed: d.mediaRelayed,
    mediaNode: d.mediaNode,
    owner: d.owner,
    createdAt: iso(d.createdAt),
    ringingAt: iso(d.ringingAt),
    answeredAt: iso(d.answeredAt),
  };
}
