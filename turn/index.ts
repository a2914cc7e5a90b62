/**
 * NAT traversal for the apps: short-lived TURN credentials in coturn's `use-auth-secret` scheme and the
 * RTCIceServer list of `GET /v1/ice-servers`. The server loads `TurnCredentials.load(...)` at start and
 * mounts `iceServerRoutes(...)` with `access: 'user'`; with no turn.servers it runs an `EmbeddedTurnServer`.
 */
export {
  TurnCredentials, TurnError, TURN_SECRET_FILE, SECRET_BYTES, MIN_SECRET_LENGTH, MAX_TTL_S,
  restUser, type TurnCredential, type TurnCredentialsLoadOptions, type TurnErrorCode,
} from './credentials.js';
export { EmbeddedTurnServer, type EmbeddedTurnServerOptions, type PeerRange, type TurnServerStats } from './server.js';
export { iceServers, type IceServerConfig, type IceServersOptions, type RtcIceServer } from './ice-servers.js';
export { iceServerRoutes, NO_SERVER, type IceServerRoutesDeps } from './routes.js';
