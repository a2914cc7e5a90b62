export { CliError, type CliErrorCode } from './cli-error.js';
export { runUserCommand, USER_USAGE, parseUserAddress, parseDomain, formatUserAddress, type UserAddress } from './user-commands.js';
export {
  runRoutingCommand, runReloadCommand, ROUTING_USAGE, type RoutingGroup, type RoutingCommandDeps, type ReloadCommandDeps,
} from './routing-commands.js';
export { runTokenCommand, withAdminToken, parseExpires, TOKEN_USAGE, ADMIN_TOKEN_ENV, CLI_TOKEN_PREFIX } from './token-commands.js';
export { type PasswordSources, readFirstLine, promptHidden, USER_PASSWORD_ENV } from './password-input.js';
export { runBanCommand, BAN_USAGE, type BanCommandDeps } from './ban-commands.js';
export { runCallCommand, parseCallListArgs, parseSince, formatDuration, CALLS_USAGE } from './call-commands.js';
export { runPushCommand, parsePushTestArgs, PUSH_USAGE, type PushCommandDeps } from './push-commands.js';
