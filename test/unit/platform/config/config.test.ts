import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../../platform/config/index.js';

function file(text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), 'softswitch-config-')), 'softswitch.yaml');
  writeFileSync(p, text);
  return p;
}

function rejects(fn: () => unknown, key: string, value?: unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, key);
    if (value !== undefined) assert.deepEqual(err.value, value);
    assert.match(err.message, new RegExp(`configuration key ${key.replace(/[[\]]/g, '\\$&')}: `));
    return true;
  });
}

describe('configuration', () => {
  it('starts with embedded defaults when there is no file', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.store.url, 'sqlite:data/softswitch.db');
    assert.deepEqual(c.sip.listen.map((l) => l.protocol), ['udp', 'tcp', 'tls', 'ws', 'wss']);
    assert.deepEqual(c.sip.domain, ['localhost']);
    assert.equal(c.log.level, 'info');
  });

  it('reads sip.listen from YAML, IPv6 in brackets', () => {
    const c = loadConfig({ env: {}, file: file('sip:\n  listen: ["udp:127.0.0.1:5070", "wss:[::1]:8443"]\n  domain: [example.com]\n') });
    assert.deepEqual(c.sip.listen, [
      { protocol: 'udp', address: '127.0.0.1', port: 5070 },
      { protocol: 'wss', address: '::1', port: 8443 },
    ]);
    assert.deepEqual(c.sip.domain, ['example.com']);
  });

  it('lets SOFTSWITCH_* environment variables override the file', () => {
    const c = loadConfig({ env: { SOFTSWITCH_SIP_LISTEN: 'tcp:127.0.0.1:5090', SOFTSWITCH_LOG_LEVEL: 'debug' }, file: file('log:\n  level: warn\n') });
    assert.deepEqual(c.sip.listen, [{ protocol: 'tcp', address: '127.0.0.1', port: 5090 }]);
    assert.equal(c.log.level, 'debug');
  });

  it('stops with the key, the value and the reason for an unknown transport', () => {
    rejects(() => loadConfig({ env: {}, file: file('sip:\n  listen: ["udp:127.0.0.1:5060", "sctp:127.0.0.1:5060"]\n') }), 'sip.listen[1]', 'sctp:127.0.0.1:5060');
  });

  it('stops on a port over 65535, a bad log level, an unknown key and a lone tls.cert', () => {
    rejects(() => loadConfig({ env: {}, file: file('sip:\n  listen: ["udp:127.0.0.1:70000"]\n') }), 'sip.listen[0]');
    rejects(() => loadConfig({ env: {}, file: file('log:\n  level: loud\n') }), 'log.level', 'loud');
    rejects(() => loadConfig({ env: {}, file: file('sip:\n  lisen: []\n') }), 'sip');
    rejects(() => loadConfig({ env: {}, file: file('tls:\n  cert: /x.pem\n') }), 'tls.key');
  });

  it('has user token defaults (plain HTTP, 900 s access, 30 d refresh, key file) and refuses a short http.tokenSecret without showing it', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.http.tls, false);
    assert.equal(c.http.userTokenTtl, 900);
    assert.equal(c.http.refreshTokenTtl, 2_592_000);
    assert.equal(c.http.tokenSecret, undefined);
    const secret = 'k'.repeat(40);
    assert.equal(loadConfig({ env: { SOFTSWITCH_HTTP_TOKEN_SECRET: secret } }).http.tokenSecret, secret);
    rejects(() => loadConfig({ env: { SOFTSWITCH_HTTP_TOKEN_SECRET: 'short-secret' } }), 'http.tokenSecret', '(12 characters, not shown)');
    assert.throws(() => loadConfig({ env: { SOFTSWITCH_HTTP_TOKEN_SECRET: 'short-secret' } }), (err: Error) => !err.message.includes('short-secret'));
    rejects(() => loadConfig({ env: {}, file: file('http:\n  userTokenTtl: 10\n') }), 'http.userTokenTtl', 10);
    rejects(() => loadConfig({ env: {}, file: file('http:\n  tls: "yes"\n') }), 'http.tls', 'yes');
  });

  it('has an http.bodyLimit of 1 MiB, between 1 KiB and 64 MiB, and no CORS origin', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.http.bodyLimit, 1_048_576);
    assert.deepEqual(c.http.corsOrigins, []);
    assert.equal(loadConfig({ env: {}, file: file('http:\n  bodyLimit: 65536\n') }).http.bodyLimit, 65_536);
    rejects(() => loadConfig({ env: {}, file: file('http:\n  bodyLimit: 100\n') }), 'http.bodyLimit', 100);
    rejects(() => loadConfig({ env: {}, file: file('http:\n  bodyLimit: 1.5\n') }), 'http.bodyLimit', 1.5);
    rejects(() => loadConfig({ env: {}, file: file('http:\n  bodyLimit: 134217728\n') }), 'http.bodyLimit', 134_217_728);
  });

  it('has chat defaults (64 KiB bodies, 80 KiB stream messages so they fit, no retention) and refuses a bad storage.masterKey without showing it', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.messaging.enabled, true);
    assert.equal(c.messaging.maxBodySize, 65_536);
    assert.ok(c.limits.maxMessageSize.wss > c.messaging.maxBodySize + 4096, 'a MESSAGE with the largest body and its headers fits a WSS message');
    assert.equal(c.messaging.retentionDays, 0);
    assert.equal(c.storage.masterKey, undefined);
    const key = 'ab'.repeat(32);
    assert.equal(loadConfig({ env: { SOFTSWITCH_STORAGE_MASTER_KEY: key } }).storage.masterKey, key);
    const bad = 'not-a-key-but-secret-material';
    rejects(() => loadConfig({ env: { SOFTSWITCH_STORAGE_MASTER_KEY: bad } }), 'storage.masterKey');
    assert.throws(() => loadConfig({ env: { SOFTSWITCH_STORAGE_MASTER_KEY: bad } }), (err: Error) => !err.message.includes(bad));
    rejects(() => loadConfig({ env: {}, file: file('messaging:\n  fileTypes: ["images"]\n') }), 'messaging.fileTypes[0]', 'images');
    rejects(() => loadConfig({ env: {}, file: file('messaging:\n  maxGroupMembers: 1\n') }), 'messaging.maxGroupMembers', 1);
  });

  it('has no Janus node by default (meetings.janus), reads a list of them, and refuses a bad one naming the key without showing a secret', () => {
    assert.deepEqual(loadConfig({ env: {} }).meetings.janus, []);
    const node = { url: 'ws://10.0.0.7:8188', adminUrl: 'ws://10.0.0.7:7188', adminSecret: 'admin-secret-value', apiSecret: 'api-secret-value' };
    assert.deepEqual(loadConfig({ env: {}, file: file(`meetings:\n  janus:\n    - ${JSON.stringify(node)}\n`) }).meetings.janus, [{ ...node, capacity: 400 }]);
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, url: 'http://10.0.0.7:8088/janus' }] } }), 'meetings.janus[0].url', 'http://10.0.0.7:8088/janus');
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [{ url: node.url, adminUrl: node.adminUrl }] } }), 'meetings.janus[0].adminSecret');
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, apiSecret: '' }] } }), 'meetings.janus[0].apiSecret', '(0 characters, not shown)');
    // an unknown key refuses the whole entry: it is shown with its secrets hidden
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, weight: 10 }] } }), 'meetings.janus[0]', { ...node, adminSecret: '(not shown)', apiSecret: '(not shown)', weight: 10 });
    assert.throws(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, weight: 10 }] } }), (err: Error) => !err.message.includes('secret-value'));
  });

  it('takes each Janus node\'s capacity (forwarded streams, 400 by default) and the health checks\' pace, and refuses two nodes with one url', () => {
    const node = { url: 'ws://10.0.0.7:8188', adminUrl: 'ws://10.0.0.7:7188', adminSecret: 'admin-secret-value' };
    const config = loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, capacity: 900 }], 'meetings.healthIntervalMs': 500, 'meetings.downAfter': 3 } });
    assert.deepEqual([config.meetings.janus[0]?.capacity, config.meetings.healthIntervalMs, config.meetings.downAfter], [900, 500, 3]);
    const defaults = loadConfig({ env: {} }).meetings;
    assert.deepEqual([defaults.healthIntervalMs, defaults.downAfter], [2000, 2]);
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, capacity: 0 }] } }), 'meetings.janus[0].capacity', 0);
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.healthIntervalMs': 10 } }), 'meetings.healthIntervalMs', 10);
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [node, { ...node, adminUrl: 'ws://10.0.0.8:7188' }] } }), 'meetings.janus');
  });

  it('takes a Janus node\'s recordingDir (where its rooms record and the softswitch reads), none by default, and refuses an empty one', () => {
    const node = { url: 'ws://10.0.0.7:8188', adminUrl: 'ws://10.0.0.7:7188', adminSecret: 'admin-secret-value' };
    assert.equal(loadConfig({ env: {}, overrides: { 'meetings.janus': [node] } }).meetings.janus[0]?.recordingDir, undefined);
    assert.equal(loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, recordingDir: '/var/lib/janus/recordings' }] } }).meetings.janus[0]?.recordingDir, '/var/lib/janus/recordings');
    rejects(() => loadConfig({ env: {}, overrides: { 'meetings.janus': [{ ...node, recordingDir: '' }] } }), 'meetings.janus[0].recordingDir', '');
  });

  it('keeps state in-process without cluster.redis, takes a redis:// URL from the file or SOFTSWITCH_CLUSTER_REDIS, and refuses another URL without showing it', () => {
    assert.equal(loadConfig({ env: {} }).cluster.redis, undefined);
    assert.equal(loadConfig({ env: {}, file: file('cluster:\n  redis: redis://127.0.0.1:6379/2\n') }).cluster.redis, 'redis://127.0.0.1:6379/2');
    assert.equal(loadConfig({ env: { SOFTSWITCH_CLUSTER_REDIS: 'rediss://:pw@redis.example.com' } }).cluster.redis, 'rediss://:pw@redis.example.com');
    rejects(() => loadConfig({ env: { SOFTSWITCH_CLUSTER_REDIS: 'http://:hunter2@127.0.0.1:6379' } }), 'cluster.redis', '(30 characters, not shown)');
    assert.throws(() => loadConfig({ env: { SOFTSWITCH_CLUSTER_REDIS: 'http://:hunter2@127.0.0.1:6379' } }), (err: Error) => !err.message.includes('hunter2'));
    rejects(() => loadConfig({ env: {}, overrides: { 'cluster.redis': 'redis://' } }), 'cluster.redis');
    rejects(() => loadConfig({ env: {}, overrides: { 'cluster.nodes': [] } }), 'cluster');
  });

  it('names the file when it is missing or not YAML', () => {
    rejects(() => loadConfig({ env: {}, file: '/nonexistent/softswitch.yaml' }), '--config');
    rejects(() => loadConfig({ env: {}, file: file('sip: [unclosed\n') }), '--config');
  });
});
