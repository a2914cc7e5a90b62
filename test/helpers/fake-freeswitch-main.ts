/**
 * The FreeSWITCH stand-in as a process of its own, so an end-to-end test can SIGKILL it in the middle of
 * a load run and start it again on the same port: `startFakeFreeswitchProcess()` in fake-freeswitch.ts
 * runs it.
 *
 *   node dist/test/helpers/fake-freeswitch-main.js '<FakeFreeswitchProcessOptions as JSON>'
 *
 * stdout carries JSON lines only: `{"event":"ready","port":…}` once it listens, then one line per
 * REGISTER, INVITE and call event (FakeFreeswitchProcessEvent). stdin takes FakeFreeswitchCommand lines
 * (`{"cmd":"setAnswerOptions","value":false,"id":1}`), each answered by a `result` line with its id.
 * SIGTERM hangs the calls up (for at most a second) and exits 0; the end of stdin (the parent is gone)
 * exits at once. Logs (LOG=<level>) go to stderr.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type FakeFreeswitchCommand, type FakeFreeswitchProcessEvent, type FakeFreeswitchProcessOptions, FakeFreeswitch,
} from './fake-freeswitch.js';

function emit(e: FakeFreeswitchProcessEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

async function execute(fs: FakeFreeswitch, c: FakeFreeswitchCommand): Promise<unknown> {
  switch (c.cmd) {
    case 'setAnswerOptions':
      return fs.setAnswerOptions(c.value);
    case 'setSilent':
      return fs.setSilent(c.value);
    case 'setAnswerDelay':
      return fs.setAnswerDelay(c.ms);
    case 'answerWith':
      return fs.answerWith(c.rule);
    case 'clearAnswerRules':
      return fs.clearAnswerRules();
    case 'hangupAll':
      return fs.hangupAll();
    case 'stats':
      return fs.stats();
    case 'registrations':
      return fs.registrations(c.aor);
    default:
      throw new TypeError(`unknown command ${JSON.stringify(c)}`);
  }
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as FakeFreeswitchProcessOptions;
  const fs = new FakeFreeswitch(options);
  fs.on('register', (r) => emit({
    event: 'register', aor: r.aor, contact: r.contact, expires: r.expires, authorization: r.authorization, status: r.status, source: r.source,
  }));
  fs.on('invite', (r) => emit({
    event: 'invite', callId: r.callId, requestUri: r.requestUri, from: r.from, to: r.to, pAssertedIdentity: r.pAssertedIdentity,
    authorization: r.authorization, status: r.status, source: r.source,
  }));
  fs.on('answered', (call) => emit({ event: 'answered', call }));
  fs.on('confirmed', (call) => emit({ event: 'confirmed', call }));
  fs.on('ended', (call) => emit({ event: 'ended', call }));
  await fs.start();

  let stopping = false;
  const stop = async (graceful: boolean): Promise<never> => {
    if (!stopping) {
      stopping = true;
      if (graceful) await Promise.race([fs.hangupAll(), sleep(1_000)]);
      await fs.close();
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop(true));
  process.on('SIGINT', () => void stop(true));

  createInterface({ input: process.stdin })
    .on('line', (line) => {
      let c: FakeFreeswitchCommand & { id?: number };
      try {
        c = JSON.parse(line) as FakeFreeswitchCommand & { id?: number };
      } catch {
        return;
      }
      const id = c.id ?? 0;
      execute(fs, c).then(
        (result) => emit({ event: 'result', id, result: result ?? null }),
        (err: unknown) => emit({ event: 'result', id, error: (err as Error).message }),
      );
    })
    .on('close', () => void stop(false));

  emit({ event: 'ready', port: fs.port, uri: fs.uri, pid: process.pid });
}

main().catch((err: unknown) => {
  process.stderr.write(`fake-freeswitch: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
