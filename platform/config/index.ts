export { loadConfig, validate, parseListen, ConfigError, type Config, type LoadConfigOptions } from './config.js';
