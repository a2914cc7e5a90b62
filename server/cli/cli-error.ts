import { StoreError } from '../../platform/store/index.js';

export type CliErrorCode =
  | 'CLI_ERR_USAGE' // unknown sub-command, option or argument count
  | 'CLI_ERR_INVALID' // an argument that is not valid (address, password)
  | 'CLI_ERR_DUPLICATE' // the thing to add exists
  | 'CLI_ERR_NOT_FOUND' // the thing to change does not exist
  | 'CLI_ERR_STORE'; // the store failed

/** A command-line failure: `message` is printed as is and the process exits with `exitCode`. */
export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly exitCode: number;

  /** Usage errors exit with 2, as main.ts does for an unknown command; everything else with 1. */
  constructor(code: CliErrorCode, message: string, exitCode = code === 'CLI_ERR_USAGE' ? 2 : 1) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A usage error: what is wrong, then the command group's usage text. Exits with 2. */
export function usageError(message: string, usage: string): CliError {
  return new CliError('CLI_ERR_USAGE', `${message}\n${usage}`);
}

/** `softswitch GROUP` without a sub-command, or with one it does not know. */
export function unknownSubCommand(group: string, command: string | undefined, usage: string): CliError {
  return usageError(command === undefined ? `${group}: missing sub-command` : `${group}: unknown sub-command ${JSON.stringify(command)}`, usage);
}

/** Store failures in the operator's words; a value the store refuses (TypeError) is an invalid argument. */
export function fromStore(what: string): (err: unknown) => never {
  return (err: unknown): never => {
    if (err instanceof StoreError) {
      if (err.code === 'STORE_ERR_DUPLICATE') throw new CliError('CLI_ERR_DUPLICATE', `${what}: ${err.message}`);
      if (err.code === 'STORE_ERR_NOT_FOUND') throw new CliError('CLI_ERR_NOT_FOUND', `${what}: ${err.message}`);
      throw new CliError('CLI_ERR_STORE', err.message);
    }
    if (err instanceof TypeError) throw new CliError('CLI_ERR_INVALID', `${what}: ${err.message}`);
    throw err;
  };
}
