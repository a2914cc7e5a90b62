export { Stack, type StackOptions, type StackStats, type DrainOptions } from './stack.js';
export type { StackTransport, StackUser } from './types.js';
export { DefaultUser, ALLOWED_METHODS, answerCancel } from './default-user.js';
export { checkRequest, type Rejection } from './request-checks.js';
