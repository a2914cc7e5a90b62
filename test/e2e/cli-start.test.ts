/** `softswitch start` as an operator runs it: a configuration file, clean stop on SIGTERM, clear errors. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { repoRoot } from '../../support/paths.js';
import { freePort, run } from '../../support/tools.js';

const main = join(repoRoot, 'dist', 'server', 'main.js');

describe('softswitch start', () => {
  it('starts from a YAML file, answers OPTIONS over UDP, and stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-cli-'));
    const port = await freePort();
    const cfg = join(dir, 'softswitch.yaml');
    writeFileSync(cfg, `sip:\n  listen: ["udp:127.0.0.1:${port}"]\n  domain: [example.com]\ndataDir: ${dir}\nhttp:\n  listen: "127.0.0.1:0"\nturn:\n  listen: "127.0.0.1:0"\nstore:\n  url: "sqlite:${dir}/db.sqlite"\n`);
    const child = spawn(process.execPath, [main, 'start', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('"listening"'), 10_000, () => out);
      const sock = createSocket('udp4');
      const reply = await new Promise<string>((resolve) => {
        sock.on('message', (m) => resolve(m.toString()));
        sock.send(
          `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKcli1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: cli1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
          port,
          '127.0.0.1',
        );
      });
      sock.close();
      assert.match(reply, /^SIP\/2\.0 200 OK/);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(out, /"stopped"/);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a bad configuration value, naming the key, the value and why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-cli-'));
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'sip:\n  listen: ["udp:127.0.0.1:99999"]\n');
    try {
      const r = await run(process.execPath, [main, 'start', '--config', cfg], { timeoutMs: 10_000 });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /configuration key sip\.listen\[0\]: "udp:127\.0\.0\.1:99999" is not valid: port 99999 is over 65535/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out; output so far:\n${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
