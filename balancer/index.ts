/**
 * The load balancer and the routing data (issue 6). `createBalancer({ stack, repository, logger,
 * options })` returns the Balancer (BalancerApi); `balancer.routing` is the RoutingData
 * (RoutingDataApi) of the same reload: `await balancer.start()` loads both, probes and reloads
 * periodically; `await balancer.reload()` (POST /reload) refreshes both at once. `routingRoutes` serves the same
 * data as REST resources under /v1 (backends, routes, DIDs, trusted sources).
 */
export { Balancer, createBalancer, DEFAULT_BALANCER_OPTIONS, type BalancerInit, type BalancerStack } from './balancer.js';
export { RoutingData, type RoutingDataInit } from './routing-data.js';
export { routingRoutes, type RoutingRoutesDeps } from './routes.js';
export type * from './types.js';
