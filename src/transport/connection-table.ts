import { normalizeAddress } from './address.js';
import type { Connection } from './connection.js';
import type { TransportProtocol } from './types.js';

/**
 * Every open connection by flow id, and by protocol + remote address + port so that a request to an
 * address reuses a connection already open to it (RFC 3261 §18.1.1, RFC 5923 §1).
 */
export class ConnectionTable {
  private readonly byId = new Map<string, Connection>();
  private readonly byAddress = new Map<string, Set<Connection>>();

  get size(): number {
    return this.byId.size;
  }

  add(connection: Connection): void {
    if (this.byId.has(connection.id)) throw new Error(`duplicate flow id ${connection.id}`);
    this.byId.set(connection.id, connection);
    const key = addressKey(connection.protocol, connection.flow.remote.address, connection.flow.remote.port);
    let set = this.byAddress.get(key);
    if (!set) this.byAddress.set(key, (set = new Set()));
    set.add(connection);
  }

  remove(connection: Connection): void {
    if (this.byId.get(connection.id) !== connection) return;
    this.byId.delete(connection.id);
    const key = addressKey(connection.protocol, connection.flow.remote.address, connection.flow.remote.port);
    const set = this.byAddress.get(key);
    if (set) {
      set.delete(connection);
      if (set.size === 0) this.byAddress.delete(key);
    }
  }

  /** The connection with this flow id, if it is still open. */
  get(id: string): Connection | undefined {
    const c = this.byId.get(id);
    return c?.isOpen ? c : undefined;
  }

  /** The most recently added open connection to this peer, if any. */
  findByAddress(protocol: TransportProtocol, address: string, port: number): Connection | undefined {
    const set = this.byAddress.get(addressKey(protocol, address, port));
    if (!set) return undefined;
    let found: Connection | undefined;
    for (const c of set) if (c.isOpen) found = c;
    return found;
  }

  /** A snapshot, safe to iterate while connections close. */
  all(): Connection[] {
    return [...this.byId.values()];
  }
}

function addressKey(protocol: TransportProtocol, address: string, port: number): string {
  return `${protocol}|${normalizeAddress(address)}|${port}`;
}
