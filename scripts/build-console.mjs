// Builds the web console (console/web) into dist/console/web: the pages' scripts bundled with esbuild (SIP.js is
// most of the bundle), the HTML and CSS copied. Part of `npm run build`, after tsc has type-checked the browser
// code (console/web/tsconfig.json). esbuild is a devDependency like typescript: a production install builds
// elsewhere (or before `npm prune --omit=dev`) and ships dist/. No network is used.
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const src = 'console/web';
const out = 'dist/console/web';
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [join(src, 'softphone.ts'), join(src, 'admin.ts')],
  outdir: out,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  minify: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});
for (const name of readdirSync(src)) {
  if (name.endsWith('.html') || name.endsWith('.css')) copyFileSync(join(src, name), join(out, name));
}
const sizes = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).map((f) => `${f.slice(out.length + 1)} ${Math.round(statSync(f).size / 1024)} KiB`);
console.log(`console: ${sizes.join(', ')}`);
