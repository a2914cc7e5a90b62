/**
 * Fixtures for the balancer tests: an in-memory RoutingRepository (with a switch that makes it fail
 * like an unreachable database) and a fake stack that records the probes and answers them on demand.
 */
import type { ClientTransaction, ClientTransactionUser } from '../../../src/transaction/index.js';
import { type SipRequest, createResponse } from '../../../src/sip/index.js';
import type { Destination, TransportProtocol } from '../../../src/transport/types.js';
import type {
  BackendRecord, BackendSetRecord, BalanceAlgorithm, DidRecord, RouteRecord, RoutingRepository, TrustedRecord,
} from '../../../balancer/index.js';
import type { BalancerStack } from '../../../balancer/index.js';

export class MemoryRoutingRepository implements RoutingRepository {
  sets: BackendSetRecord[] = [];
  backends: BackendRecord[] = [];
  routes: RouteRecord[] = [];
  dids: DidRecord[] = [];
  trusted: TrustedRecord[] = [];
  /** While set, every call rejects with this error. */
  failWith: Error | undefined;
  private nextId = 1;

  private check(): void {
    if (this.failWith !== undefined) throw this.failWith;
  }

  async listSets() { this.check(); return [...this.sets]; }
  async putSet(set: BackendSetRecord) {
    this.check();
    this.sets = [...this.sets.filter((s) => s.name !== set.name), set];
  }
  async listBackends() { this.check(); return [...this.backends]; }
  async addBackend(b: { set: string; uri: string; weight?: number; enabled?: boolean }) {
    this.check();
    if (!this.sets.some((s) => s.name === b.set)) this.sets.push({ name: b.set, algorithm: 'round-robin' });
    const r: BackendRecord = { id: this.nextId++, set: b.set, uri: b.uri, weight: b.weight ?? 1, enabled: b.enabled ?? true, createdAt: 0 };
    this.backends.push(r);
    return r;
  }
  async removeBackend(id: number) { this.check(); this.backends = this.backends.filter((b) => b.id !== id); }
  async setBackendEnabled(id: number, enabled: boolean) {
    this.check();
    this.backends = this.backends.map((b) => (b.id === id ? { ...b, enabled } : b));
  }
  async listRoutes() { this.check(); return [...this.routes]; }
  async addRoute(r: Omit<RouteRecord, 'id'>) { this.check(); const x = { ...r, id: this.nextId++ }; this.routes.push(x); return x; }
  async removeRoute(id: number) { this.check(); this.routes = this.routes.filter((r) => r.id !== id); }
  async listDids() { this.check(); return [...this.dids]; }
  async addDid(d: DidRecord) { this.check(); this.dids.push(d); }
  async removeDid(n: string) { this.check(); this.dids = this.dids.filter((d) => d.number !== n); }
  async listTrusted() { this.check(); return [...this.trusted]; }
  async addTrusted(t: Omit<TrustedRecord, 'id'>) { this.check(); const x = { ...t, id: this.nextId++ }; this.trusted.push(x); return x; }
  async removeTrusted(id: number) { this.check(); this.trusted = this.trusted.filter((t) => t.id !== id); }

  /** A set with `n` backends sip:10.0.0.1 … sip:10.0.0.n, weights as given (1 by default). */
  async pool(set: string, algorithm: BalanceAlgorithm, weights: number[]): Promise<BackendRecord[]> {
    await this.putSet({ name: set, algorithm });
    const out: BackendRecord[] = [];
    for (let i = 0; i < weights.length; i++) out.push(await this.addBackend({ set, uri: `sip:10.0.${this.sets.length}.${i + 1}:5060`, weight: weights[i]! }));
    return out;
  }
}

export interface SentProbe {
  request: SipRequest;
  destination: Destination;
  user: ClientTransactionUser;
}

/** A stack that only records what the balancer sends; tests answer with `answer()`. */
export class FakeStack implements BalancerStack {
  readonly sent: SentProbe[] = [];

  sendRequest(request: SipRequest, destination: Destination, user: ClientTransactionUser): ClientTransaction {
    request.prepend('Via', `SIP/2.0/${destination.protocol.toUpperCase()} 192.0.2.1:5060;branch=z9hG4bK${this.sent.length}x`);
    this.sent.push({ request, destination, user });
    return {} as ClientTransaction;
  }

  advertisedAddress(_protocol: TransportProtocol): { host: string; port: number } | undefined {
    return { host: '192.0.2.1', port: 5060 };
  }

  /** Probes sent to `address` and not yet answered are answered with `status`. */
  answer(address: string, status: number): number {
    let n = 0;
    for (const p of this.sent.splice(0)) {
      if (p.destination.address !== address) {
        this.sent.push(p);
        continue;
      }
      p.user.onResponse(createResponse(p.request, status), {} as ClientTransaction);
      n++;
    }
    return n;
  }

  /** Forgets the probes sent to `address` (they stay unanswered). */
  drop(address: string): void {
    const keep = this.sent.filter((p) => p.destination.address !== address);
    this.sent.length = 0;
    this.sent.push(...keep);
  }
}

/** Lets pending promise callbacks (resolve → send) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
