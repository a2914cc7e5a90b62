/**
 * NAT traversal for the apps: short-lived TURN credentials in coturn's `use-auth-secret` scheme, the embedded
 * STUN/TURN server, and the RTCIceServer list of `GET /v1/ice-servers` and of a REGISTER's 200 (`X-Ice-Servers`).
 * The server makes one `TurnService`, starts it with the stack and mounts `iceServerRoutes(turn.routeDeps)` with
 * `access: 'user'`.
 */
export {
  TurnCredentials, TurnError, TURN_SECRET_FILE, SECRET_BYTES, MIN_SECRET_LENGTH, MAX_TTL_S,
  restUser, type TurnCredential, type TurnCredentialsLoadOptions, type TurnErrorCode,
} from './credentials.js';
export { EmbeddedTurnServer, type EmbeddedTurnServerOptions, type PeerRange, type TurnServerStats } from './server.js';
export { iceServers, type IceServerConfig, type IceServersOptions, type RtcIceServer } from './ice-servers.js';
export { iceServerRoutes, iceServerAnswer, NO_SERVER, type IceServerAnswer, type IceServerRoutesDeps } from './routes.js';
export { TurnService, ICE_SERVERS_HEADER, type TurnServiceOptions, type TurnSettings } from './service.js';
