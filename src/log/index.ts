export { createLogger, silentLogger, categoryLogger, type Logger, type LogLevel } from './logger.js';
