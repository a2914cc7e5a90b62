/**
 * The domains this softswitch serves, and what else names them. Desk phones are often set up with the
 * server's IP address as their SIP domain (`sip:alice@192.0.2.10`): with a single served domain, this
 * server's own addresses are aliases of it, so such a phone registers, calls and is called as
 * alice@<domain>. With several domains an address cannot say which one is meant, and the 404 says so.
 */
import { SipParseError, SipUri, parseUri } from '../src/sip/index.js';

export class ServedDomains {
  private readonly domains: ReadonlySet<string>;
  private readonly only: string | undefined;
  private readonly isLocalHost: (host: string) => boolean;

  /** `isLocalHost` answers whether a host (any port) is one of this server's addresses. */
  constructor(domains: readonly string[], isLocalHost: (host: string) => boolean = () => false) {
    if (domains.length === 0) throw new TypeError('at least one served domain is needed');
    this.domains = new Set(domains.map((d) => d.toLowerCase()));
    this.only = this.domains.size === 1 ? [...this.domains][0] : undefined;
    this.isLocalHost = isLocalHost;
  }

  get list(): string[] {
    return [...this.domains];
  }

  has(host: string): boolean {
    return this.domains.has(host.toLowerCase());
  }

  /** The served domain `host` stands for: itself, or with one served domain this server's own address. */
  canonical(host: string): string | undefined {
    const h = host.toLowerCase();
    if (this.domains.has(h)) return h;
    return this.only !== undefined && this.isLocalHost(h) ? this.only : undefined;
  }

  /** The reason phrase of a 404 for an address-of-record whose host is not served. */
  notServedReason(host: string): string {
    if (this.only === undefined && this.isLocalHost(host.toLowerCase())) {
      return `Not Found: this server's address names no domain when several are served (use one of ${this.list.join(', ')})`;
    }
    return 'Not Found: address-of-record not in a domain served here';
  }

  /**
   * A digest `uri` that names this server rather than the Request-URI: a SIP URI without a user part
   * whose host is a served domain or one of our addresses, any port (what SIPp's `-au/-ap` writes).
   */
  namesServer(text: string): boolean {
    let uri;
    try {
      uri = parseUri(text);
    } catch (err) {
      if (err instanceof SipParseError) return false;
      throw err;
    }
    if (!(uri instanceof SipUri) || uri.user !== undefined) return false;
    return this.domains.has(uri.hostname) || this.isLocalHost(uri.hostname);
  }
}
