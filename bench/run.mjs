// npm run bench -- <scenario> [args]: runs one benchmark from bench/ (compiled to dist/bench/).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const [scenario, ...rest] = process.argv.slice(2);
const scenarios = {
  parser: 'dist/bench/parser.js',
  options: 'dist/bench/options.js',
  register: 'dist/bench/register.js',
  calls: 'dist/bench/calls.js',
  'call-setup': 'dist/bench/call-setup.js',
  kamailio: 'dist/bench/kamailio.js',
  wss: 'dist/bench/wss.js',
  'tls-floor': 'dist/bench/tls-floor.js',
  flood: 'dist/bench/flood.js',
  'push-wake': 'dist/bench/push-wake.js',
  chat: 'dist/bench/chat.js',
  presence: 'dist/bench/presence.js',
  meetings: 'dist/bench/meetings.js',
};
if (!scenario || !(scenario in scenarios)) {
  console.error(`usage: npm run bench -- <${Object.keys(scenarios).join('|')}> [args]`);
  process.exit(2);
}
const file = scenarios[scenario];
if (!existsSync(file)) {
  console.error(`${file} is missing: run npm run build`);
  process.exit(1);
}
const r = spawnSync(process.execPath, [file, ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
