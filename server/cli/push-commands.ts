/**
 * `softswitch push test USER@DOMAIN`: sends a test push (a `message`, so the app shows it without
 * starting a call UI) to every push-capable binding of a user, through the configured providers, and
 * prints each provider's answer: what an operator runs after setting up APNs/FCM credentials, or when a
 * user says their phone does not ring. Reads the bindings from the store, so the server may be stopped.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { type PushParams, type PushProvider, type Uri, parseNameAddrs, parsePushParams, parseUri } from '../../src/sip/index.js';
import type { LocationRepository } from '../../platform/store/types.js';
import type { PushPayload, PushProviderClient } from '../../push/types.js';
import { shortToken } from '../../push/delivery.js';
import { CliError, fromStore, unknownSubCommand, usageError } from './cli-error.js';
import { printTable } from './routing-commands.js';
import { parseUserAddress } from './user-commands.js';

export const PUSH_USAGE = `usage:
  softswitch push test USER@DOMAIN        send a test push to every push binding of the user (RFC 8599
                                          pn-* contact parameters) and print each provider's answer:
                                          provider, device token (shortened), status, reason`;

export interface PushCommandDeps {
  locations: Pick<LocationRepository, 'listAor'>;
  providers: ReadonlyMap<PushProvider, PushProviderClient>;
  out: (line: string) => void;
  now?: () => number;
}

/** The AoR `push test` is about (`sip:user@domain`), from its arguments. */
export function parsePushTestArgs(args: string[]): string {
  let positionals: string[];
  try {
    ({ positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true }));
  } catch (err) {
    throw usageError(`push test: ${(err as Error).message}`, PUSH_USAGE);
  }
  if (positionals.length !== 1) throw usageError('push test: expected one USER@DOMAIN', PUSH_USAGE);
  const { username, domain } = parseUserAddress(positionals[0]!);
  return `sip:${username}@${domain}`;
}

/** Runs `softswitch push …`; answers the exit code (1 when any push failed or there was none to send). */
export async function runPushCommand(args: string[], deps: PushCommandDeps): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'test') throw unknownSubCommand('push', sub, PUSH_USAGE);
  const aor = parsePushTestArgs(rest);
  const now = deps.now?.() ?? Date.now();
  const bindings = await deps.locations.listAor(aor, now).catch(fromStore('push test'));
  const devices = bindings.map((b) => pushParamsOf(b.contact)).filter((p): p is PushParams => p !== undefined);
  if (devices.length === 0) {
    deps.out(bindings.length === 0 ? `${aor} has no bindings` : `${aor} has no push bindings (${bindings.length} without pn-provider and pn-prid)`);
    return 1;
  }
  const payload: PushPayload = { kind: 'message', id: `push-test-${randomUUID()}`, aor: aor.slice('sip:'.length), from: 'sip:softswitch', fromName: 'softswitch push test' };
  const rows = await Promise.all(
    devices.map(async (device) => {
      const client = deps.providers.get(device.provider);
      if (client === undefined) return [device.provider, shortToken(device.prid), 'skipped', `${device.provider} is not configured (see push.${device.provider})`];
      const r = await client.send(device, payload);
      const status = r.ok ? `ok ${r.status}` : r.status === 0 ? 'failed' : `failed ${r.status}`;
      return [device.provider, shortToken(device.prid), status, [r.reason, r.unregistered === true ? '(device token dead: the binding will be dropped)' : undefined].filter(Boolean).join(' ')];
    }),
  );
  printTable(deps.out, ['PROVIDER', 'TOKEN', 'STATUS', 'REASON'], rows, '');
  return rows.every((r) => r[2]!.startsWith('ok')) ? 0 : 1;
}

/** The push parameters of a stored contact (a URI, or a name-addr with the URI in angle brackets). */
function pushParamsOf(contact: string): PushParams | undefined {
  let uri: Uri;
  try {
    uri = contact.includes('<') ? parseNameAddrs(contact, 'contact', false)[0]!.uri : parseUri(contact);
  } catch {
    return undefined;
  }
  return parsePushParams(uri);
}
