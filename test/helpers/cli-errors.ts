import assert from 'node:assert/strict';
import { CliError, type CliErrorCode } from '../../server/cli/index.js';

/**
 * That a CLI command fails as an operator should see it: a CliError with `code`, exit status 2 for a usage error
 * and 1 otherwise, and a message matching `message`. `command` names it in the failure message.
 */
export async function assertCliFails(running: Promise<unknown>, command: string, code: CliErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(running, (err: unknown) => {
    assert.ok(err instanceof CliError, `expected a CliError from "${command}", got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.exitCode, code === 'CLI_ERR_USAGE' ? 2 : 1);
    assert.match(err.message, message);
    return true;
  });
}
