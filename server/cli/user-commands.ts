/**
 * `softswitch user …`: add, list, delete, disable and enable subscribers and change their passwords. A disabled
 * subscriber keeps its row but fails digest authentication (a running server within 5 s, its credential cache)
 * and its access tokens die; its registered devices stay until they refresh (the API's route kicks them at once). The store keeps only
 * the HA1 hashes; nothing here prints or logs a password or a hash.
 */
import { parseArgs } from 'node:util';
import { escapeUriUser, isIpv4, isIpv6Reference, unescapeUriPart, utf8ToWire } from '../../src/sip/index.js';
import { MAX_PRESENCE_USER, StoreError, type Store } from '../../platform/store/index.js';
import { CliError, unknownSubCommand, usageError } from './cli-error.js';
import { type PasswordSources, USER_PASSWORD_ENV } from './password-input.js';

export const USER_USAGE = `usage:
  softswitch user add USER@DOMAIN [PASSWORD SOURCE]        add a subscriber (and its domain if new)
  softswitch user list [DOMAIN]                            list subscribers, one USER@DOMAIN a line
  softswitch user del USER@DOMAIN                          delete a subscriber
  softswitch user passwd USER@DOMAIN [PASSWORD SOURCE]     change a subscriber's password
  softswitch user disable|enable USER@DOMAIN               refuse (or allow again) its sign-ins; keeps it
PASSWORD SOURCE, the first that applies:
  --password PASSWORD                                      visible to every user in ps: avoid
  --password-stdin                                         the first line of standard input
  \$${USER_PASSWORD_ENV}                                the environment
  (none, on a terminal)                                    asked for, twice, without echo`;

export interface UserAddress {
  /** Unicode text, escapes resolved: what a client sends as the digest username. */
  username: string;
  /** Lower-case host name, IPv4 address or [IPv6] reference. */
  domain: string;
}

function table(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (const ch of chars) t[ch.charCodeAt(0)] = 1;
  return t;
}

/** RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved ). */
const USER_CHARS = table("-_.!~*'()" + '&=+$,;?/');
const HEX = /^[0-9A-Fa-f]{2}$/;

function invalid(text: string, reason: string): CliError {
  return new CliError('CLI_ERR_INVALID', `invalid address ${JSON.stringify(text)}: ${reason}`);
}

/**
 * The user part as typed: SIP user characters and %HH escapes; characters beyond ASCII are taken as
 * UTF-8, as phones send them. Returns the unescaped Unicode text.
 */
function parseUser(text: string, user: string): string {
  if (user === '') throw invalid(text, 'the user part is empty (expected user@domain)');
  for (let i = 0; i < user.length; i++) {
    const c = user.charCodeAt(i);
    if (c === 0x25) {
      if (!HEX.test(user.slice(i + 1, i + 3))) throw invalid(text, `"%" at position ${i + 1} is not followed by two hex digits`);
      i += 2;
      continue;
    }
    if (c >= 0x80 || USER_CHARS[c] === 1) continue;
    throw invalid(text, `${JSON.stringify(user[i])} may not appear in the user part (use %${c.toString(16).toUpperCase().padStart(2, '0')})`);
  }
  const wire = unescapeUriPart(utf8ToWire(user));
  const bytes = Buffer.from(wire, 'latin1');
  const username = bytes.toString('utf8');
  if (!Buffer.from(username, 'utf8').equals(bytes)) throw invalid(text, 'the escapes of the user part are not UTF-8');
  if (/[\x00-\x1f\x7f]/.test(username)) throw invalid(text, 'the user part holds a control character');
  return username;
}

/** RFC 3261 §25.1 hostname: labels of alphanum and inner "-", the last starting with a letter; or an IP. */
export function parseDomain(domain: string): string | undefined {
  let d = domain.toLowerCase();
  if (isIpv4(d) || isIpv6Reference(d)) return d;
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d.length === 0 || d.length > 253) return undefined;
  const labels = d.split('.');
  for (const label of labels) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) return undefined;
  }
  return /^[a-z]/.test(labels[labels.length - 1]!) ? d : undefined;
}

export function parseUserAddress(text: string): UserAddress {
  const at = text.indexOf('@');
  if (at === -1 || text.indexOf('@', at + 1) !== -1) throw invalid(text, 'expected user@domain, e.g. alice@example.com');
  const username = parseUser(text, text.slice(0, at));
  const host = text.slice(at + 1);
  if (host === '') throw invalid(text, 'the domain is empty (expected user@domain)');
  const domain = parseDomain(host);
  if (domain === undefined) throw invalid(text, `${JSON.stringify(host)} is not a host name or IP address (an IPv6 address goes in brackets, no port)`);
  return { username, domain };
}

/** The address as `user@domain` with the user part escaped, so it can be typed back. */
export function formatUserAddress(username: string, domain: string): string {
  return `${escapeUriUser(utf8ToWire(username))}@${domain}`;
}

const usage = (message: string): CliError => usageError(message, USER_USAGE);

interface Parsed {
  positionals: string[];
  password: string | undefined;
  passwordStdin: boolean;
}

function parse(command: string, args: string[], withPassword: boolean, positionals: [min: number, max: number]): Parsed {
  let parsed: { values: { password?: string | boolean; 'password-stdin'?: string | boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args,
      options: withPassword ? { password: { type: 'string', short: 'p' }, 'password-stdin': { type: 'boolean' } } : {},
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usage(`user ${command}: ${(err as Error).message}`);
  }
  const n = parsed.positionals.length;
  if (n < positionals[0] || n > positionals[1]) {
    throw usage(n < positionals[0] ? `user ${command}: missing USER@DOMAIN` : `user ${command}: unexpected argument ${JSON.stringify(parsed.positionals[positionals[1]])}`);
  }
  const password = parsed.values.password;
  const passwordStdin = parsed.values['password-stdin'] === true;
  if (passwordStdin && password !== undefined) throw usage(`user ${command}: --password and --password-stdin exclude each other`);
  return { positionals: parsed.positionals, password: typeof password === 'string' ? password : undefined, passwordStdin };
}

/**
 * The password from the first source that applies: --password, --password-stdin, the environment, the
 * terminal. Never printed, never part of an error message.
 */
async function passwordOf(command: string, address: string, parsed: Parsed, sources: PasswordSources): Promise<string> {
  let password = parsed.password;
  if (password === undefined && parsed.passwordStdin) {
    if (sources.readStdin === undefined) throw new CliError('CLI_ERR_INVALID', `user ${command}: --password-stdin: no standard input to read`);
    password = await sources.readStdin();
  }
  if (password === undefined && sources.env !== undefined && sources.env !== '') password = sources.env;
  if (password === undefined && sources.prompt !== undefined) {
    password = await sources.prompt(`Password for ${address}: `);
    if (password !== '' && (await sources.prompt('Again: ')) !== password) throw new CliError('CLI_ERR_INVALID', `user ${command}: the two passwords differ`);
  }
  if (password === undefined) {
    throw new CliError('CLI_ERR_INVALID', `user ${command}: a password is required (--password-stdin, ${USER_PASSWORD_ENV}, a terminal to type it, or --password PASSWORD)`);
  }
  if (password === '') throw new CliError('CLI_ERR_INVALID', `user ${command}: the password must not be empty`);
  return password;
}

/** Store failures in the operator's words; anything unexpected keeps the store's own message. */
function fromStore(err: unknown, address: string): never {
  if (err instanceof StoreError) {
    if (err.code === 'STORE_ERR_DUPLICATE') throw new CliError('CLI_ERR_DUPLICATE', `user ${address} already exists`);
    if (err.code === 'STORE_ERR_NOT_FOUND') throw new CliError('CLI_ERR_NOT_FOUND', `no such user ${address}`);
    throw new CliError('CLI_ERR_STORE', err.message);
  }
  // The store refuses arguments its columns cannot hold (a user part over 255 characters).
  if (err instanceof TypeError) throw new CliError('CLI_ERR_INVALID', `invalid address ${JSON.stringify(address)}: ${err.message}`);
  throw err;
}

/** Runs `softswitch user ARGS…` against the store; results go to `out`, failures throw CliError. */
export async function runUserCommand(args: string[], store: Store, out: (line: string) => void, sources: PasswordSources = {}): Promise<void> {
  const [command, ...rest] = args;
  switch (command) {
    case 'add': {
      const parsed = parse(command, rest, true, [1, 1]);
      const { username, domain } = parseUserAddress(parsed.positionals[0]!);
      const address = formatUserAddress(username, domain);
      const password = await passwordOf(command, address, parsed, sources);
      await store.subscribers.add({ username, domain, password }).catch((err) => fromStore(err, address));
      out(`added ${address}`);
      return;
    }
    case 'list': {
      const { positionals } = parse(command, rest, false, [0, 1]);
      let domain: string | undefined;
      if (positionals[0] !== undefined) {
        domain = parseDomain(positionals[0]);
        if (domain === undefined) throw new CliError('CLI_ERR_INVALID', `user list: ${JSON.stringify(positionals[0])} is not a host name or IP address`);
      }
      const subscribers = await store.subscribers.list(domain).catch((err) => fromStore(err, domain ?? ''));
      for (const s of subscribers) out(`${formatUserAddress(s.username, s.domain)}${s.enabled ? '' : ' (disabled)'}`);
      return;
    }
    case 'del': {
      const { positionals } = parse(command, rest, false, [1, 1]);
      const { username, domain } = parseUserAddress(positionals[0]!);
      const address = formatUserAddress(username, domain);
      await store.subscribers.remove(username, domain).catch((err) => fromStore(err, address));
      // A new subscriber made later under the same name must not inherit who could watch the old one.
      if (`${username}@${domain}`.length <= MAX_PRESENCE_USER) await store.presence.forget(`${username}@${domain}`).catch((err) => fromStore(err, address));
      // Its meetings go too: a link to a deleted user's meeting stops working.
      await store.meetings.removeOwnedBy(`${username}@${domain}`).catch((err) => fromStore(err, address));
      out(`deleted ${address}`);
      return;
    }
    case 'passwd': {
      const parsed = parse(command, rest, true, [1, 1]);
      const { username, domain } = parseUserAddress(parsed.positionals[0]!);
      const address = formatUserAddress(username, domain);
      const password = await passwordOf(command, address, parsed, sources);
      await store.subscribers.setPassword(username, domain, password).catch((err) => fromStore(err, address));
      out(`changed the password of ${address}`);
      return;
    }
    case 'disable':
    case 'enable': {
      const { positionals } = parse(command, rest, false, [1, 1]);
      const { username, domain } = parseUserAddress(positionals[0]!);
      const address = formatUserAddress(username, domain);
      await store.subscribers.setEnabled(username, domain, command === 'enable').catch((err) => fromStore(err, address));
      out(`${command}d ${address}`);
      return;
    }
    case 'help':
    case '--help':
    case '-h':
      for (const line of USER_USAGE.split('\n')) out(line);
      return;
    default:
      throw unknownSubCommand('user', command, USER_USAGE);
  }
}
