export {
  HttpServer, isLoopbackHost, TOKEN_CACHE_MS, TOKEN_FAILURES_MAX, TOKEN_FAILURE_WINDOW_MS,
  type HealthSource, type AdminTokenSource, type HttpServerOptions,
} from './http-server.js';
