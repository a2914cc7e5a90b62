import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CliError, parsePushTestArgs, runPushCommand } from '../../../../server/cli/index.js';
import type { PushParams, PushProvider } from '../../../../src/sip/index.js';
import type { PushPayload, PushProviderClient, PushResult } from '../../../../push/types.js';
import type { StoredBinding } from '../../../../platform/store/types.js';

/** A provider client that records what it was asked to send and answers from a table by token. */
class RecordingClient implements PushProviderClient {
  readonly sent: Array<{ device: PushParams; payload: PushPayload }> = [];
  constructor(
    readonly provider: PushProvider,
    private readonly answers: Record<string, PushResult> = {},
  ) {}
  async send(device: PushParams, payload: PushPayload): Promise<PushResult> {
    this.sent.push({ device, payload });
    return this.answers[device.prid] ?? { ok: true, status: 200 };
  }
  async close(): Promise<void> {}
}

function binding(contact: string): StoredBinding {
  return { id: 1, aor: 'sip:alice@example.com', contact, received: 'udp:192.0.2.9:5060', callId: 'c', cseq: 1, expiresAt: 2e12, instanceId: undefined, regId: undefined, q: undefined, path: undefined, flowId: undefined, userAgent: undefined, node: undefined, updatedAt: 0 };
}

async function pushTest(args: string[], contacts: string[], providers: PushProviderClient[]): Promise<{ code: number; out: string[]; asked: string[] }> {
  const out: string[] = [];
  const asked: string[] = [];
  const code = await runPushCommand(args, {
    locations: { listAor: async (aor) => (asked.push(aor), contacts.map(binding)) },
    providers: new Map(providers.map((p) => [p.provider, p])),
    out: (l) => out.push(l),
  });
  return { code, out, asked };
}

describe('softswitch push test USER@DOMAIN', () => {
  it('takes exactly one user address and names the AoR as the store keeps it', () => {
    assert.equal(parsePushTestArgs(['alice@Example.COM']), 'sip:alice@example.com');
    for (const args of [[], ['a@example.com', 'b@example.com'], ['--force', 'a@example.com']]) {
      assert.throws(() => parsePushTestArgs(args), (e: unknown) => e instanceof CliError && e.code === 'CLI_ERR_USAGE');
    }
    assert.throws(() => parsePushTestArgs(['no-domain']), (e: unknown) => e instanceof CliError && e.code === 'CLI_ERR_INVALID');
  });

  it('sends a message push to each push binding and prints one line per device, tokens shortened', async () => {
    const apns = new RecordingClient('apns', { deadbeef0000: { ok: false, status: 410, reason: 'Unregistered', unregistered: true } });
    const fcm = new RecordingClient('fcm');
    const { code, out, asked } = await pushTest(['test', 'alice@example.com'], [
      'sip:alice@192.0.2.1:5060;transport=tcp;pn-provider=apns;pn-prid=0123456789abcdef;pn-param=TEAM.com.example.voip',
      '<sip:alice@192.0.2.2:5060;pn-provider=fcm;pn-prid=fcmtoken-1234567>',
      'sip:alice@192.0.2.3:5060;pn-provider=apns;pn-prid=deadbeef0000',
      'sip:alice@192.0.2.4:5060',
    ], [apns, fcm]);
    assert.deepEqual(asked, ['sip:alice@example.com']);
    assert.equal(code, 1);
    assert.deepEqual(out, [
      'PROVIDER  TOKEN    STATUS      REASON',
      'apns      012345…  ok 200',
      'fcm       fcmtok…  ok 200',
      'apns      deadbe…  failed 410  Unregistered (device token dead: the binding will be dropped)',
    ]);
    assert.deepEqual(apns.sent.map((s) => s.device), [
      { provider: 'apns', prid: '0123456789abcdef', param: 'TEAM.com.example.voip', purr: undefined },
      { provider: 'apns', prid: 'deadbeef0000', param: undefined, purr: undefined },
    ]);
    const payload = fcm.sent[0]!.payload;
    assert.equal(payload.kind, 'message');
    assert.equal(payload.aor, 'alice@example.com');
    assert.equal(out.join('\n').includes('0123456789abcdef'), false);
  });

  it('exits 0 when every push is accepted, and says so when a provider is not configured', async () => {
    const ok = await pushTest(['test', 'alice@example.com'], ['sip:alice@192.0.2.2;pn-provider=fcm;pn-prid=tok-abcdefgh'], [new RecordingClient('fcm')]);
    assert.equal(ok.code, 0);
    const skipped = await pushTest(['test', 'alice@example.com'], ['sip:alice@192.0.2.2;pn-provider=fcm;pn-prid=tok-abcdefgh'], []);
    assert.equal(skipped.code, 1);
    assert.match(skipped.out[1]!, /^fcm\s+tok-ab…\s+skipped\s+fcm is not configured \(see push\.fcm\)$/);
  });

  it('says so when the user has no push bindings', async () => {
    const { code, out } = await pushTest(['test', 'alice@example.com'], ['sip:alice@192.0.2.4:5060'], [new RecordingClient('apns')]);
    assert.equal(code, 1);
    assert.deepEqual(out, ['sip:alice@example.com has no push bindings (1 without pn-provider and pn-prid)']);
    assert.deepEqual((await pushTest(['test', 'alice@example.com'], [], [])).out, ['sip:alice@example.com has no bindings']);
  });

  it('refuses an unknown sub-command with the usage', async () => {
    await assert.rejects(pushTest(['send', 'alice@example.com'], [], []), (e: unknown) => e instanceof CliError && e.code === 'CLI_ERR_USAGE' && /softswitch push test/.test(e.message));
  });
});
