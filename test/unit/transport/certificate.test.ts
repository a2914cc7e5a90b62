import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateCertificate } from '../../../src/transport/index.js';
import { capturingLogger } from './helpers.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'softswitch-cert-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('loadOrCreateCertificate', () => {
  it('generates a self-signed certificate once, warns where it is, and reuses it on the next start', async () => {
    const dataDir = tempDir();
    const log1 = capturingLogger('info');
    const first = await loadOrCreateCertificate({ dataDir, hostnames: ['sip.example.com'], logger: log1.logger });
    assert.equal(first.selfSigned, true);
    assert.equal(first.path, join(dataDir, 'tls', 'selfsigned.crt'));
    const warnings = log1.lines().filter((l) => l.level === 40);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!.msg), /self-signed/);
    assert.ok(String(warnings[0]!.msg).includes(first.path));
    assert.equal(statSync(join(dataDir, 'tls', 'selfsigned.key')).mode & 0o777, 0o600);

    const log2 = capturingLogger('info');
    const second = await loadOrCreateCertificate({ dataDir, hostnames: ['sip.example.com'], logger: log2.logger });
    assert.equal(second.cert, first.cert);
    assert.equal(second.key, first.key);
    assert.equal(log2.lines().length, 0);
  });

  it('covers the hostnames, 127.0.0.1 and ::1, for about ten years', async () => {
    const { cert } = await loadOrCreateCertificate({ dataDir: tempDir(), hostnames: ['sip.example.com', '192.0.2.7'], logger: capturingLogger().logger });
    const x509 = new X509Certificate(cert);
    assert.equal(x509.checkHost('sip.example.com'), 'sip.example.com');
    assert.equal(x509.checkIP('192.0.2.7'), '192.0.2.7');
    assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(x509.checkIP('::1'), '::1');
    const years = (Date.parse(x509.validTo) - Date.now()) / (365.25 * 24 * 3600 * 1000);
    assert.ok(years > 9.9 && years < 10.1, `valid for ${years} years`);
  });

  it('generates a new certificate when the stored one does not cover a configured hostname', async () => {
    const dataDir = tempDir();
    const first = await loadOrCreateCertificate({ dataDir, hostnames: ['a.example.com'], logger: capturingLogger().logger });
    const second = await loadOrCreateCertificate({ dataDir, hostnames: ['b.example.com'], logger: capturingLogger().logger });
    assert.notEqual(second.cert, first.cert);
    assert.equal(new X509Certificate(second.cert).checkHost('b.example.com'), 'b.example.com');
  });

  it("uses the operator's files when configured", async () => {
    const generated = await loadOrCreateCertificate({ dataDir: tempDir(), hostnames: [], logger: capturingLogger().logger });
    const dir = tempDir();
    const certFile = join(dir, 'server.crt');
    const keyFile = join(dir, 'server.key');
    writeFileSync(certFile, generated.cert);
    writeFileSync(keyFile, generated.key);
    const loaded = await loadOrCreateCertificate({ certFile, keyFile, dataDir: tempDir(), hostnames: [], logger: capturingLogger().logger });
    assert.deepEqual(loaded, { cert: generated.cert, key: generated.key, selfSigned: false, path: certFile });
  });

  it('a missing or unreadable operator file is an error naming the configuration key and the path', async () => {
    const dir = tempDir();
    const missing = join(dir, 'nope.crt');
    const keyFile = join(dir, 'server.key');
    writeFileSync(keyFile, 'not a key');
    await assert.rejects(
      loadOrCreateCertificate({ certFile: missing, keyFile, dataDir: dir, hostnames: [], logger: capturingLogger().logger }),
      (err: Error) => err.message.includes('tls.cert') && err.message.includes(missing),
    );
    const generated = await loadOrCreateCertificate({ dataDir: tempDir(), hostnames: [], logger: capturingLogger().logger });
    const certFile = join(dir, 'server.crt');
    writeFileSync(certFile, generated.cert);
    await assert.rejects(
      loadOrCreateCertificate({ certFile, keyFile, dataDir: dir, hostnames: [], logger: capturingLogger().logger }),
      (err: Error) => err.message.includes('tls.key') && err.message.includes(keyFile),
    );
  });
});
