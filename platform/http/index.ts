export {
  HttpServer, DEFAULT_BODY_LIMIT, isLoopbackHost, callerOf, principalOf, TOKEN_CACHE_MS, TOKEN_FAILURES_MAX, TOKEN_FAILURE_WINDOW_MS, TOKEN_PATH,
  type HealthSource, type AdminTokenSource, type HttpServerOptions, type GuestPrincipal, type Principal, type RouteAccess,
} from './http-server.js';
export {
  UserTokens, loadTokenKey, isUserTokenShape, passwordFingerprint, DEFAULT_ACCESS_TTL_S, DEFAULT_GUEST_TTL_S, GUEST_GRANT, DEFAULT_REFRESH_TTL_S, FINGERPRINT_CACHE_MS, TOKEN_KEY_FILE,
  type UserTokensOptions, type SubscriberSource, type AccessCheck, type TokenResponse, type GuestTokenResponse, type MeetingSource, type GrantAnswer, type GrantError,
} from './user-tokens.js';
export { normalizeUser } from './users.js';
export { FailureLimiter } from './failure-limiter.js';
export { DOCS_PATH, OPENAPI_PATH, errorBody, errors, isoTime, jsonSchema, noContent, response } from './openapi.js';
export { API_ERRORS, Refusal, apiError, codeOf, errorJson, parseInput, type ApiErrorBody, type ApiErrorCode, type ApiErrorStatus } from './refusal.js';
export { CORS_EXPOSED_HEADERS, CORS_METHODS, CORS_REQUEST_HEADERS, allowOrigins } from './cors.js';
export { addEtags, noneMatch, weakEtag } from './etag.js';
export { decodeCursor, encodeCursor, pageOf, pageQuery } from './pages.js';
