/**
 * bench/options: OPTIONS pings over UDP from SIPp to the server (answered statelessly, 200 OK), at a few
 * fixed rates. Reports the rate reached, failures, and the server's CPU seconds per 10,000 requests.
 * Usage: node dist/bench/options.js [requests per step, default 40000]
 */
import { join } from 'node:path';
import { freePort } from '../support/tools.js';
import { repoRoot, runSipp, startServerProcess } from './lib.js';

const count = Number(process.argv[2] ?? 40_000);
const rates = [2000, 5000, 10000];

const port = await freePort();
const server = await startServerProcess((dir) => `sip:\n  listen: ["udp:127.0.0.1:${port}"]\n  domain: [example.com]\nlog:\n  level: info\ndataDir: ${dir}\nhttp:\n  listen: "127.0.0.1:0"\nstore:\n  url: "sqlite:${dir}/db.sqlite"\n`);
const rows: string[] = [];
try {
  for (const rate of rates) {
    const sippPort = await freePort();
    const cpu0 = server.cpuSeconds();
    const r = runSipp([
      `127.0.0.1:${port}`, '-sf', join(repoRoot, 'test', 'e2e', 'sipp', 'options.xml'), '-t', 'u1', '-i', '127.0.0.1', '-p', String(sippPort),
      '-m', String(count), '-r', String(rate), '-l', String(rate), '-timeout', '60s',
    ], 90);
    const cpu = server.cpuSeconds() - cpu0;
    rows.push(`| ${rate.toLocaleString('en-US')} | ${Math.round(r.successful / r.seconds).toLocaleString('en-US')} | ${r.successful} | ${r.failed} | ${r.retransmissions} | ${((cpu / r.successful) * 10_000).toFixed(3)} | ${server.memoryMiB().toFixed(0)} |`);
  }
} finally {
  await server.stop();
}
console.log(`node ${process.version}, ${count} OPTIONS per step, UDP on 127.0.0.1, one server process`);
console.log('| target rate/s | achieved/s | 200 OK | failed | retransmissions | server CPU s per 10,000 | server RSS MiB |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const row of rows) console.log(row);
