/**
 * Routing data in SQL (sql/0002_routing.ts): backend sets and backends for the load balancer, dialplan
 * routes, DIDs and trusted sources. Every write is checked here, so what the balancer and the routing
 * policy load at reload is always usable: a backend URI parses as sip:/sips:, a pattern compiles, a
 * CIDR is an address or block.
 */
import { isIP } from 'node:net';
import type {
  BackendRecord, BackendSetRecord, BalanceAlgorithm, DidRecord, RouteRecord, RoutingRepository, TrustedRecord,
} from './routing-types.js';
import { parseSipUri } from '../../src/sip/index.js';
import { StoreError } from './store-error.js';
import { type SqlContext, checkText, toNumber } from './sql-context.js';
import { normalizeDomain } from './sql-domain-repository.js';
import type { Knex } from 'knex';

interface SetRow {
  name: string;
  algorithm: string;
}

interface BackendRow {
  id: number | string;
  set_name: string;
  uri: string;
  weight: number | string;
  enabled: number | boolean;
  created_at: number | string;
}

interface RouteRow {
  id: number | string;
  pattern: string;
  replace: string;
  set_name: string;
  priority: number | string;
  description: string;
}

interface DidRow {
  number: string;
  username: string;
  domain: string;
}

interface TrustedRow {
  id: number | string;
  cidr: string;
  description: string;
}

export const BALANCE_ALGORITHMS: readonly BalanceAlgorithm[] = ['round-robin', 'weighted', 'least-calls'];

const BACKEND_COLUMNS = ['id', 'set_name', 'uri', 'weight', 'enabled', 'created_at'] as const;
const ROUTE_COLUMNS = ['id', 'pattern', 'replace', 'set_name', 'priority', 'description'] as const;
const INT32_MAX = 2_147_483_647;

// ---- checks (bad arguments throw TypeError; limits match the columns of sql/0002_routing.ts) ----------

/** A set name goes into configuration (`registrar.backendSet`) and logs: a token, no spaces. */
export function checkSetName(value: unknown): string {
  const name = checkText('set', value, 255);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new TypeError(`set ${JSON.stringify(name)} must be letters, digits, ".", "_" or "-"`);
  return name;
}

export function checkAlgorithm(value: unknown): BalanceAlgorithm {
  if (typeof value !== 'string' || !(BALANCE_ALGORITHMS as readonly string[]).includes(value)) {
    throw new TypeError(`algorithm must be one of ${BALANCE_ALGORITHMS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as BalanceAlgorithm;
}

/** A backend is reached at a SIP URI: `sip:10.0.0.5:5060;transport=udp`, `sips:fs1.example.com`. */
export function checkBackendUri(value: unknown): string {
  const text = checkText('uri', value, 512).trim();
  try {
    parseSipUri(text);
  } catch (err) {
    throw new TypeError(`uri ${JSON.stringify(text)} is not a sip: or sips: URI: ${(err as Error).message}`);
  }
  return text;
}

export function checkWeight(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1000) {
    throw new TypeError(`weight must be a whole number from 1 to 1000, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A route pattern is a JavaScript regular expression; the dialplan anchors it (full match). */
export function checkPattern(value: unknown): string {
  const pattern = checkText('pattern', value, 255);
  try {
    new RegExp(`^(?:${pattern})$`);
  } catch (err) {
    throw new TypeError(`pattern ${JSON.stringify(pattern)} is not a regular expression: ${(err as Error).message}`);
  }
  return pattern;
}

function checkOptionalText(name: string, value: unknown, max: number): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  if (value.length > max) throw new TypeError(`${name} is longer than ${max} characters`);
  return value;
}

function checkPriority(value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -INT32_MAX || value > INT32_MAX) {
    throw new TypeError(`priority must be a whole number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkId(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new TypeError(`id must be a positive whole number, got ${JSON.stringify(value)}`);
  return value;
}

/** An E.164 number with or without its `+`, or a short number of digits. */
export function checkDidNumber(value: unknown): string {
  const number = checkText('number', value, 32);
  if (!/^\+?[0-9]{1,31}$/.test(number)) throw new TypeError(`number ${JSON.stringify(number)} must be digits with an optional leading "+"`);
  return number;
}

/**
 * `10.0.0.5`, `10.0.0.0/24`, `2001:db8::1`, `2001:db8::/32`; an IPv6 address may come in brackets.
 * Returns the text as stored (brackets removed) with its address, family and prefix length.
 */
export function parseCidr(value: unknown): { cidr: string; address: string; family: 4 | 6; prefix: number } {
  const text = checkText('cidr', value, 64).trim();
  const slash = text.indexOf('/');
  let address = slash === -1 ? text : text.slice(0, slash);
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  const family = isIP(address);
  if (family !== 4 && family !== 6) throw new TypeError(`cidr ${JSON.stringify(text)} is not an IPv4/IPv6 address or CIDR block`);
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) throw new TypeError(`cidr ${JSON.stringify(text)}: the prefix length must be 0 to ${max}`);
    prefix = Number(p);
  }
  return { cidr: slash === -1 ? address : `${address}/${prefix}`, address, family, prefix };
}

// ---- rows ------------------------------------------------------------------------------------------

function toBackend(row: BackendRow): BackendRecord {
  return {
    id: toNumber(row.id),
    set: row.set_name,
    uri: row.uri,
    weight: toNumber(row.weight),
    enabled: Boolean(toNumber(row.enabled)),
    createdAt: toNumber(row.created_at),
  };
}

function toRoute(row: RouteRow): RouteRecord {
  return {
    id: toNumber(row.id),
    pattern: row.pattern,
    replace: row.replace,
    set: row.set_name,
    priority: toNumber(row.priority),
    description: row.description,
  };
}

function toTrusted(row: TrustedRow): TrustedRecord {
  return { id: toNumber(row.id), cidr: row.cidr, description: row.description };
}

/** Adds the set (round-robin) when missing, inside the caller's transaction; an existing one is left as it is. */
async function ensureSet(db: Knex | Knex.Transaction, name: string): Promise<void> {
  await db('backend_sets').insert({ name, algorithm: 'round-robin' }).onConflict('name').ignore();
}

function notFound(what: string): StoreError {
  return new StoreError('STORE_ERR_NOT_FOUND', what);
}

export class SqlRoutingRepository implements RoutingRepository {
  constructor(private readonly ctx: SqlContext) {}

  // ---- sets ----------------------------------------------------------------------------------------

  async listSets(): Promise<BackendSetRecord[]> {
    return this.ctx.run('listing backend sets', async (db) => {
      const rows = await db<SetRow>('backend_sets').select('name', 'algorithm').orderBy('name');
      // A value written by hand that is no algorithm of ours reads as the default.
      return rows.map((r) => ({ name: r.name, algorithm: (BALANCE_ALGORITHMS as readonly string[]).includes(r.algorithm) ? (r.algorithm as BalanceAlgorithm) : 'round-robin' }));
    });
  }

  async putSet(set: BackendSetRecord): Promise<void> {
    const name = checkSetName(set.name);
    const algorithm = checkAlgorithm(set.algorithm);
    return this.ctx.run('saving a backend set', async (db) => {
      await db('backend_sets').insert({ name, algorithm }).onConflict('name').merge(['algorithm']);
    });
  }

  // ---- backends ------------------------------------------------------------------------------------

  async listBackends(): Promise<BackendRecord[]> {
    return this.ctx.run('listing backends', async (db) => {
      const rows = await db<BackendRow>('backends').select(...BACKEND_COLUMNS).orderBy('id');
      return rows.map(toBackend);
    });
  }

  async addBackend(b: { set: string; uri: string; weight?: number; enabled?: boolean }): Promise<BackendRecord> {
    const set = checkSetName(b.set);
    const uri = checkBackendUri(b.uri);
    const weight = checkWeight(b.weight ?? 1);
    if (b.enabled !== undefined && typeof b.enabled !== 'boolean') throw new TypeError('enabled must be true or false');
    const enabled = b.enabled ?? true;
    const duplicate = () => new StoreError('STORE_ERR_DUPLICATE', `backend ${uri} is already in set ${set}`);
    return this.ctx.run('adding a backend', (db) => db.transaction(async (trx) => {
      await ensureSet(trx, set);
      await trx('backends').insert({ set_name: set, uri, weight, enabled, created_at: Date.now() });
      const row = await trx<BackendRow>('backends').where({ set_name: set, uri }).first(...BACKEND_COLUMNS);
      return toBackend(row!);
    }), duplicate);
  }

  async removeBackend(id: number): Promise<void> {
    const key = checkId(id);
    return this.ctx.run('removing a backend', async (db) => {
      const removed = await db('backends').where({ id: key }).del();
      if (removed === 0) throw notFound(`no such backend ${key}`);
    });
  }

  async setBackendEnabled(id: number, enabled: boolean): Promise<void> {
    const key = checkId(id);
    if (typeof enabled !== 'boolean') throw new TypeError('enabled must be true or false');
    return this.ctx.run(enabled ? 'enabling a backend' : 'disabling a backend', async (db) => {
      const changed = await db('backends').where({ id: key }).update({ enabled });
      // MariaDB may count only rows whose value changed: an unchanged one still exists.
      if (changed === 0 && (await db('backends').where({ id: key }).first('id')) === undefined) throw notFound(`no such backend ${key}`);
    });
  }

  // ---- routes --------------------------------------------------------------------------------------

  async listRoutes(): Promise<RouteRecord[]> {
    return this.ctx.run('listing routes', async (db) => {
      const rows = await db<RouteRow>('routes').select(...ROUTE_COLUMNS).orderBy([{ column: 'priority' }, { column: 'id' }]);
      return rows.map(toRoute);
    });
  }

  async addRoute(r: Omit<RouteRecord, 'id'>): Promise<RouteRecord> {
    const route = {
      pattern: checkPattern(r.pattern),
      replace: checkOptionalText('replace', r.replace, 255),
      set_name: checkSetName(r.set),
      priority: checkPriority(r.priority),
      description: checkOptionalText('description', r.description, 255),
    };
    return this.ctx.run('adding a route', (db) => db.transaction(async (trx) => {
      await ensureSet(trx, route.set_name);
      const [inserted] = await trx('routes').insert(route);
      // SQLite and MySQL both hand back the new auto-increment id of a single-row insert.
      const row = await trx<RouteRow>('routes').where({ id: toNumber(inserted) }).first(...ROUTE_COLUMNS);
      return toRoute(row!);
    }));
  }

  async removeRoute(id: number): Promise<void> {
    const key = checkId(id);
    return this.ctx.run('removing a route', async (db) => {
      const removed = await db('routes').where({ id: key }).del();
      if (removed === 0) throw notFound(`no such route ${key}`);
    });
  }

  // ---- DIDs ----------------------------------------------------------------------------------------

  async listDids(): Promise<DidRecord[]> {
    return this.ctx.run('listing DIDs', async (db) => {
      const rows = await db<DidRow>('dids').select('number', 'username', 'domain').orderBy('number');
      return rows.map((r) => ({ number: r.number, username: r.username, domain: r.domain }));
    });
  }

  async addDid(d: DidRecord): Promise<void> {
    const row = { number: checkDidNumber(d.number), username: checkText('username', d.username, 255), domain: normalizeDomain(d.domain) };
    const duplicate = () => new StoreError('STORE_ERR_DUPLICATE', `DID ${row.number} already exists`);
    return this.ctx.run('adding a DID', async (db) => {
      await db('dids').insert(row);
    }, duplicate);
  }

  async removeDid(number: string): Promise<void> {
    const key = checkDidNumber(number);
    return this.ctx.run('removing a DID', async (db) => {
      const removed = await db('dids').where({ number: key }).del();
      if (removed === 0) throw notFound(`no such DID ${key}`);
    });
  }

  // ---- trusted sources -----------------------------------------------------------------------------

  async listTrusted(): Promise<TrustedRecord[]> {
    return this.ctx.run('listing trusted sources', async (db) => {
      const rows = await db<TrustedRow>('trusted').select('id', 'cidr', 'description').orderBy('id');
      return rows.map(toTrusted);
    });
  }

  async addTrusted(t: Omit<TrustedRecord, 'id'>): Promise<TrustedRecord> {
    const { cidr } = parseCidr(t.cidr);
    const description = checkOptionalText('description', t.description, 255);
    const duplicate = () => new StoreError('STORE_ERR_DUPLICATE', `trusted source ${cidr} already exists`);
    return this.ctx.run('adding a trusted source', async (db) => {
      await db('trusted').insert({ cidr, description });
      const row = await db<TrustedRow>('trusted').where({ cidr }).first('id', 'cidr', 'description');
      return toTrusted(row!);
    }, duplicate);
  }

  async removeTrusted(id: number): Promise<void> {
    const key = checkId(id);
    return this.ctx.run('removing a trusted source', async (db) => {
      const removed = await db('trusted').where({ id: key }).del();
      if (removed === 0) throw notFound(`no such trusted source ${key}`);
    });
  }
}
