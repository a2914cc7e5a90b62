/**
 * Meeting passwords are kept as scrypt hashes (RFC 7914; Node's crypto), never as text: a stolen database tells
 * nobody how to join. `scrypt$N$r$p$salt$hash`, salt and hash base64url, so the cost can rise later and old hashes
 * still verify. A meeting password is typed by people joining, not a user's account password, so the cost is modest
 * (N = 2^14: ~30 ms on these machines) and joins are rate-limited where they are checked.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
/** The longest password taken: hashing is the cost a joiner can impose. */
export const MAX_MEETING_PASSWORD = 128;

function scrypt(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, KEY_BYTES, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

export async function hashMeetingPassword(password: string): Promise<string> {
  if (password.length === 0 || password.length > MAX_MEETING_PASSWORD) throw new TypeError(`a meeting password has 1 to ${MAX_MEETING_PASSWORD} characters`);
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `password` is the one `hash` was made of; false for anything else, a malformed hash included. */
export async function verifyMeetingPassword(password: string, hash: string): Promise<boolean> {
  const m = /^scrypt\$(\d{1,7})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(hash);
  if (m === null || password.length > MAX_MEETING_PASSWORD) return false;
  const expected = Buffer.from(m[5]!, 'base64url');
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Only costs this module makes: a hash written by hand cannot make a join burn CPU or memory.
  if (expected.length !== KEY_BYTES || n > 1 << 17 || (n & (n - 1)) !== 0 || r > 16 || p > 4) return false;
  const key = await scrypt(password, Buffer.from(m[4]!, 'base64url'), n, r, p);
  return timingSafeEqual(key, expected);
}
