export { CliError, type CliErrorCode } from './cli-error.js';
export { runUserCommand, USER_USAGE, parseUserAddress, parseDomain, formatUserAddress, type UserAddress } from './user-commands.js';
export {
  runRoutingCommand, runReloadCommand, ROUTING_USAGE, type RoutingGroup, type RoutingCommandDeps, type ReloadCommandDeps,
} from './routing-commands.js';
