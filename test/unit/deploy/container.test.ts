/**
 * The container files (Dockerfile, compose.yaml, deploy/) checked against the repository, since Docker cannot run
 * on the machines the tests run on: the Dockerfile builds with the README's install commands, runs what the build
 * produces, checks the health port the configuration listens on, and exposes the ports it listens on; compose.yaml
 * parses, names only services, files and volumes that exist, and its softswitch configuration validates.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../../platform/config/index.js';
import { repoRoot } from '../../../support/paths.js';

const read = (path: string): string => readFileSync(join(repoRoot, path), 'utf8');

/** Dockerfile instructions as [stage index, instruction, argument], continuation lines joined, comments dropped. */
function instructions(text: string): Array<[number, string, string]> {
  const out: Array<[number, string, string]> = [];
  let stage = -1;
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    if (m[1] === 'FROM') stage++;
    out.push([stage, m[1]!, m[2]!.replace(/\s+/g, ' ').trim()]);
  }
  return out;
}

/** The commands of the README's fenced block that follows the line naming `marker`. */
function readmeBlock(marker: string): string[] {
  const readme = read('README.md');
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `README has "${marker}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, `a sh block follows "${marker}"`);
  return block[1]!.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

describe('the container image (Dockerfile)', () => {
  const steps = instructions(read('Dockerfile'));
  const config = loadConfig({ file: join(repoRoot, 'deploy', 'softswitch.yaml'), env: {} });

  it('builds with exactly the README\'s install-from-source commands, in order, and CI installs the same way', () => {
    const npmRuns = steps.filter(([stage, op, arg]) => stage === 0 && op === 'RUN' && arg.startsWith('npm ')).map(([, , arg]) => arg);
    assert.deepEqual(npmRuns, readmeBlock('Install from source'));
    assert.ok(read('.ci/run').includes(`\n${npmRuns[0]}\n`), `.ci/run installs with "${npmRuns[0]}"`);
  });

  it('runs the built CLI as a non-root user with a data volume, and the entry point exists after npm run build', () => {
    const final = steps.filter(([stage]) => stage === 1);
    const entry = JSON.parse(final.find(([, op]) => op === 'ENTRYPOINT')![2]) as string[];
    assert.deepEqual(entry.slice(0, 1), ['node']);
    assert.ok(existsSync(join(repoRoot, entry[1]!)), `${entry[1]} is built by npm run build`);
    assert.equal(JSON.parse(final.find(([, op]) => op === 'CMD')![2])[0], 'start');
    assert.equal(final.find(([, op]) => op === 'USER')?.[2], 'softswitch');
    assert.match(final.find(([, op]) => op === 'VOLUME')?.[2] ?? '', /\/var\/lib\/softswitch/);
    assert.match(final.find(([, op]) => op === 'ENV')?.[2] ?? '', /SOFTSWITCH_DATA_DIR=\/var\/lib\/softswitch/);
  });

  it('checks health on the port the deployed configuration\'s HTTP API listens on', () => {
    const check = steps.find(([, op]) => op === 'HEALTHCHECK')?.[2] ?? '';
    const url = /http:\/\/([\d.]+):(\d+)\/health/.exec(check);
    assert.ok(url, `HEALTHCHECK fetches /health: ${check}`);
    assert.equal(`${url[1]}:${url[2]}`, config.http.listen);
  });

  it('exposes every port the deployed configuration listens on (SIP, embedded TURN, HTTP)', () => {
    const exposed = new Set(steps.filter(([, op]) => op === 'EXPOSE').flatMap(([, , arg]) => arg.split(' ')));
    for (const l of config.sip.listen) {
      const proto = l.protocol === 'udp' ? 'udp' : 'tcp';
      assert.ok(exposed.has(`${l.port}/${proto}`), `EXPOSE ${l.port}/${proto} (${l.protocol})`);
    }
    assert.ok(exposed.has(`${config.turn.listen.split(':').pop()}/udp`), 'EXPOSE the embedded TURN port');
    assert.ok(exposed.has(`${config.http.listen.split(':').pop()}/tcp`), 'EXPOSE the HTTP port');
  });
});

describe('the production set (compose.yaml)', () => {
  const compose = parseYaml(read('compose.yaml')) as {
    services: Record<string, { build?: string; image?: string; depends_on?: Record<string, unknown>; volumes?: string[]; environment?: Record<string, string> }>;
    volumes: Record<string, unknown>;
  };

  it('runs the softswitch with rtpengine, coturn, MariaDB and Redis, each built from the repo or from an image', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['coturn', 'mariadb', 'redis', 'rtpengine', 'softswitch']);
    for (const [name, s] of Object.entries(compose.services)) {
      assert.ok(s.build !== undefined || s.image !== undefined, `${name} has build or image`);
      if (s.build !== undefined) assert.ok(existsSync(join(repoRoot, s.build, 'Dockerfile')), `${name}: ${s.build}/Dockerfile exists`);
    }
  });

  it('names only services that exist in depends_on, and only files of the repo and declared volumes in its mounts', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) assert.ok(dep in compose.services, `${name} depends on ${dep}`);
      for (const mount of s.volumes ?? []) {
        const source = mount.split(':')[0]!;
        if (source.startsWith('./')) {
          // ./deploy/tls is the operator's certificate folder, not in the repository
          if (source !== './deploy/tls') assert.ok(existsSync(join(repoRoot, source)), `${name} mounts ${source}, which exists`);
        } else {
          assert.ok(source in compose.volumes, `${name} mounts volume ${source}, which is declared`);
        }
      }
    }
  });

  it('gives the softswitch a configuration that validates with the environment compose passes, on MariaDB and with the TURN secret', () => {
    const env = Object.fromEntries(Object.entries(compose.services.softswitch!.environment ?? {}).map(([k, v]) => [k, v.replace(/\$\{MARIADB_PASSWORD[^}]*\}/, 'pw').replace(/\$\{TURN_SECRET[^}]*\}/, 'x'.repeat(32))]));
    const config = loadConfig({ file: join(repoRoot, 'deploy', 'softswitch.yaml'), env });
    assert.match(config.store.url, /^mysql:\/\/softswitch:pw@127\.0\.0\.1:3306\/softswitch$/);
    assert.equal(config.turn.secret, 'x'.repeat(32));
    assert.deepEqual(config.media.rtpengine.map(String), ['udp:127.0.0.1:2223']);
    assert.ok(config.turn.servers.length > 0, 'coturn is named in turn.servers (no embedded TURN server next to it)');
  });

  it('runs coturn with the repo\'s production sample, as the tests do', () => {
    assert.ok(compose.services.coturn!.volumes?.includes('./turn/turnserver.conf:/etc/turnserver.conf:ro'));
  });
});
