/**
 * The routing policy's in-memory copy of the dialplan, the DIDs and the trusted sources (Kamailio's
 * dialplan and permissions modules): rebuilt whole at each reload and swapped in at once, so a lookup
 * never sees half a reload. Regular expressions are compiled once per reload, not per call.
 */
import { promises as dns } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { parseSipUri } from '../src/sip/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import type {
  BackendRecord, DidRecord, RouteMatch, RouteRecord, RoutingDataApi, RoutingRepository, RoutingSnapshot, TrustedRecord,
} from './types.js';
import { unbracket } from '../src/transport/index.js';

export interface RoutingDataInit {
  /** Where reload() reads from; optional when the Balancer feeds it through load(). */
  repository?: Pick<RoutingRepository, 'listRoutes' | 'listDids' | 'listTrusted' | 'listBackends'>;
  logger: Logger;
  /** A/AAAA lookup of a backend host name (all addresses); `dns.promises.lookup` by default. */
  lookup?: (host: string) => Promise<string[]>;
}

interface CompiledRoute {
  readonly route: RouteRecord;
  readonly regex: RegExp;
}

interface Tables {
  readonly routes: readonly CompiledRoute[];
  readonly dids: ReadonlyMap<string, DidRecord>;
  /** By number without its leading `+`. */
  readonly didsBare: ReadonlyMap<string, DidRecord>;
  readonly trusted: BlockList;
}

const EMPTY: Tables = { routes: [], dids: new Map(), didsBare: new Map(), trusted: new BlockList() };
/** Source addresses whose trust is remembered at once (a flood of sources from everywhere only resets it). */
const TRUSTED_CACHE = 10_000;

async function lookupAll(host: string): Promise<string[]> {
  const all = await dns.lookup(host, { all: true, family: 0 });
  return all.map((a) => a.address);
}


/** `::ffff:10.0.0.5` (an IPv4 peer on a dual-stack socket) is 10.0.0.5. */
function normalizeAddress(address: string): { address: string; family: 4 | 6 } | undefined {
  let a = unbracket(address.trim());
  const zone = a.indexOf('%');
  if (zone !== -1) a = a.slice(0, zone);
  const family = isIP(a);
  if (family === 4) return { address: a, family: 4 };
  if (family !== 6) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped !== null && isIP(mapped[1]!) === 4) return { address: mapped[1]!, family: 4 };
  return { address: a, family: 6 };
}

export class RoutingData implements RoutingDataApi {
  private tables: Tables = EMPTY;
  /** isTrusted answers by source address, for the tables now loaded. */
  private readonly trustedBySource = new Map<string, boolean>();
  private readonly log: Logger;
  private readonly repository: RoutingDataInit['repository'];
  private readonly lookup: (host: string) => Promise<string[]>;

  constructor(init: RoutingDataInit) {
    this.log = categoryLogger(init.logger, 'proxy.routing-data');
    this.repository = init.repository;
    this.lookup = init.lookup ?? lookupAll;
  }

  /** Reads routes, DIDs, trusted sources and backends from the repository and swaps them in. */
  async reload(): Promise<void> {
    if (this.repository === undefined) throw new TypeError('RoutingData.reload() needs a repository (or use load())');
    const r = this.repository;
    const [routes, dids, trusted, backends] = await Promise.all([r.listRoutes(), r.listDids(), r.listTrusted(), r.listBackends()]);
    await this.load({ routes, dids, trusted, backends });
  }

  /**
   * Builds the tables from data already read (the Balancer's reload reads the store once for both).
   * Backend host names are resolved here; a name that does not resolve is logged and skipped.
   */
  async load(data: Pick<RoutingSnapshot, 'routes' | 'dids' | 'trusted' | 'backends'>): Promise<void> {
    const trusted = new BlockList();
    for (const t of data.trusted) this.addTrusted(trusted, t);
    await this.addBackends(trusted, data.backends);
    const dids = new Map<string, DidRecord>();
    const didsBare = new Map<string, DidRecord>();
    for (const d of data.dids) {
      dids.set(d.number, d);
      const bare = d.number.startsWith('+') ? d.number.slice(1) : d.number;
      // An exact entry wins over one that differs only by its '+'.
      if (!didsBare.has(bare) || d.number === bare) didsBare.set(bare, d);
    }
    const routes: CompiledRoute[] = [];
    for (const route of data.routes) {
      try {
        routes.push({ route, regex: new RegExp(`^(?:${route.pattern})$`) });
      } catch (err) {
        // The repository checks patterns; this is a row written around it.
        this.log.warn({ route: route.id, pattern: route.pattern, err: (err as Error).message }, 'route pattern does not compile; route skipped');
      }
    }
    routes.sort((a, b) => a.route.priority - b.route.priority || a.route.id - b.route.id);
    this.tables = { routes, dids, didsBare, trusted };
    this.trustedBySource.clear();
  }

  matchRoute(number: string): RouteMatch | undefined {
    // The routes are sorted by priority at load: the first that matches is the one.
    for (const { route, regex } of this.tables.routes) {
      if (!regex.test(number)) continue;
      return { route, set: route.set, number: route.replace === '' ? number : number.replace(regex, route.replace) };
    }
    return undefined;
  }

  did(number: string): DidRecord | undefined {
    const exact = this.tables.dids.get(number);
    if (exact !== undefined) return exact;
    return this.tables.didsBare.get(number.startsWith('+') ? number.slice(1) : number);
  }

  /**
   * Whether a source address is trusted. The answers are remembered per address until the next load
   * (`BlockList.check` builds a native SocketAddress per call, a cost on every request); at most
   * TRUSTED_CACHE addresses are kept, then the memory starts again.
   */
  isTrusted(address: string): boolean {
    const known = this.trustedBySource.get(address);
    if (known !== undefined) return known;
    const a = normalizeAddress(address);
    const trusted = a !== undefined && this.tables.trusted.check(a.address, a.family === 4 ? 'ipv4' : 'ipv6');
    if (this.trustedBySource.size >= TRUSTED_CACHE) this.trustedBySource.clear();
    this.trustedBySource.set(address, trusted);
    return trusted;
  }

  /** How many entries are loaded, for logs and `/reload`. */
  get counts(): { routes: number; dids: number; trustedRules: number } {
    return { routes: this.tables.routes.length, dids: this.tables.dids.size, trustedRules: this.tables.trusted.rules.length };
  }

  private addTrusted(list: BlockList, t: TrustedRecord): void {
    const slash = t.cidr.indexOf('/');
    const a = normalizeAddress(slash === -1 ? t.cidr : t.cidr.slice(0, slash));
    if (a === undefined) {
      this.log.warn({ trusted: t.id, cidr: t.cidr }, 'trusted source is not an address or CIDR; skipped');
      return;
    }
    const type = a.family === 4 ? 'ipv4' : 'ipv6';
    if (slash === -1) {
      list.addAddress(a.address, type);
      return;
    }
    const prefix = Number(t.cidr.slice(slash + 1));
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (a.family === 4 ? 32 : 128)) {
      this.log.warn({ trusted: t.id, cidr: t.cidr }, 'trusted source has a bad prefix length; skipped');
      return;
    }
    list.addSubnet(a.address, prefix, type);
  }

  /** Every backend of every set, enabled or not, may send us calls (FreeSWITCH calling a user back). */
  private async addBackends(list: BlockList, backends: readonly BackendRecord[]): Promise<void> {
    const names = new Set<string>();
    for (const b of backends) {
      let host: string;
      try {
        const uri = parseSipUri(b.uri);
        const maddr = uri.params.get('maddr');
        host = typeof maddr === 'string' && maddr !== '' ? unbracket(maddr.toLowerCase()) : uri.hostname;
      } catch {
        this.log.warn({ backend: b.id, uri: b.uri }, 'backend URI does not parse; not trusted');
        continue;
      }
      const a = normalizeAddress(host);
      if (a !== undefined) list.addAddress(a.address, a.family === 4 ? 'ipv4' : 'ipv6');
      else names.add(host);
    }
    await Promise.all([...names].map(async (name) => {
      try {
        for (const address of await this.lookup(name)) {
          const a = normalizeAddress(address);
          if (a !== undefined) list.addAddress(a.address, a.family === 4 ? 'ipv4' : 'ipv6');
        }
      } catch (err) {
        this.log.warn({ host: name, err: (err as Error).message }, 'backend host name does not resolve; its addresses are not trusted until the next reload');
      }
    }));
  }
}
