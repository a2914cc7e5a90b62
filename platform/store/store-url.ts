/**
 * The `store.url` forms: `sqlite:FILE`, `sqlite::memory:`, a bare file path, `mysql://user:pass@host:port/db`
 * (`mariadb://` too). Anything else is a configuration error naming the key, the masked value and why.
 */
import { StoreError } from './store-error.js';

export type StoreLocation =
  | { readonly dialect: 'sqlite'; readonly filename: string }
  | {
      readonly dialect: 'mysql';
      readonly host: string;
      readonly port: number;
      readonly user: string;
      readonly password: string;
      readonly database: string;
    };

const KEY = 'store.url';
const FORMS = 'expected sqlite:FILE, sqlite::memory:, a file path, or mysql://user:pass@host:port/db';
/** A scheme of at least two characters, so a Windows drive letter (`C:\…`) reads as a path. */
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]+):/;

/** The URL with the password of its userinfo replaced by `***`. */
export function maskStoreUrl(url: string): string {
  // Greedy up to the last "@": an unencoded "@" in the password must not leave its tail visible.
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@:]*:)(.*)@/, '$1***@');
}

function configError(url: string, reason: string): StoreError {
  return new StoreError('STORE_ERR_CONFIG', `configuration key ${KEY}: ${JSON.stringify(maskStoreUrl(url))} is not valid: ${reason}`, KEY);
}

export function parseStoreUrl(url: string): StoreLocation {
  if (url.trim() === '') throw configError(url, `empty (${FORMS})`);
  const m = SCHEME.exec(url);
  if (m === null) return { dialect: 'sqlite', filename: url };
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'sqlite' || scheme === 'sqlite3') {
    let filename = url.slice(m[0].length);
    // sqlite:///var/lib/x.db names an absolute path; sqlite:data/x.db a relative one.
    if (filename.startsWith('//')) filename = filename.slice(2);
    if (filename === '') throw configError(url, `no file name after "${m[0]}" (${FORMS})`);
    return { dialect: 'sqlite', filename };
  }
  if (scheme === 'mysql' || scheme === 'mariadb') return parseMysql(url);
  throw configError(url, `unsupported scheme "${scheme}:" (${FORMS})`);
}

function parseMysql(url: string): StoreLocation {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw configError(url, `not a valid URL (${FORMS})`);
  }
  if (u.hostname === '') throw configError(url, 'no host');
  if (u.username === '') throw configError(url, 'no user name (mysql://user:pass@host:port/db)');
  if (u.search !== '' || u.hash !== '') throw configError(url, 'query parameters and fragments are not supported');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) throw configError(url, 'the path must be one database name (mysql://user:pass@host:port/db)');
  const port = u.port === '' ? 3306 : Number(u.port);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return {
    dialect: 'mysql',
    host,
    port,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database,
  };
}
