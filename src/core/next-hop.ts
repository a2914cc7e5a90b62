/**
 * Responses that say the next hop (a backend of the pool), not the call, failed: a timeout (408, real or
 * made up when a failover timer runs out), 503 Service Unavailable, and 500 Server Internal Error — a box
 * that cannot serve, and what a proxy in front of it makes of its 503 (RFC 3261 §16.7 step 6). Serial
 * failover of calls, the mid-registrar's failover of REGISTERs, passive health and the OPTIONS probes all
 * use this one definition.
 */
export function isNextHopFailure(status: number): boolean {
  return status === 408 || status === 500 || status === 503;
}
