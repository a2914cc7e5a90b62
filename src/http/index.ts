export { HttpServer, type HealthSource } from './http-server.js';
