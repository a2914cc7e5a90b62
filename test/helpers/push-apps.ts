/**
 * iOS VoIP apps for the push e2e tests (test/e2e/push.test.ts, push-workers.test.ts): each app is a user of
 * its own (each test calls its own, so that no device of an earlier test rings), its push token, and its
 * instance id (kept across app restarts). Its phones are SIP.js softphones that register with the RFC 8599
 * pn-provider/pn-prid/pn-param Contact parameters of the local APNs (support/fake-apns.ts).
 */
import { randomUUID } from 'node:crypto';
import { type ApnsPush, type FakeApns, apnsDeviceToken } from '../../support/fake-apns.js';
import { type Softphone, createPhone } from './softphone.js';

export interface IosApp {
  user: string;
  token: string;
  instance: string;
}

export interface IosAppsOptions {
  apns: FakeApns;
  domain: string;
  /** The SIP password of every app's user (`<prefix>1`, `<prefix>2`…). */
  password: string;
  /** The server's WSS URL (read when a phone is made: servers start after the apps are declared). */
  wsUrl(): string;
  /** Default `bob`. */
  userPrefix?: string;
}

export class IosApps {
  /** Every phone made, for the test's clean-up. */
  readonly phones: Softphone[] = [];
  private made = 0;

  constructor(private readonly options: IosAppsOptions) {}

  /** A new app, for the next user. */
  next(): IosApp {
    return { user: `${this.options.userPrefix ?? 'bob'}${++this.made}`, token: apnsDeviceToken(), instance: randomUUID() };
  }

  /** The app started (again): a phone with the app's user, instance and push token, registered unless `register` is false. */
  async phone(app: IosApp, register = true): Promise<Softphone> {
    const { apns, domain, password } = this.options;
    const phone = await createPhone('sip.js', {
      uri: `sip:${app.user}@${domain}`, password, wsUrl: this.options.wsUrl(), instanceId: app.instance,
      contactParams: { 'pn-provider': 'apns', 'pn-prid': app.token, 'pn-param': `${apns.teamId}.${apns.bundleId}.voip` },
    });
    this.phones.push(phone);
    if (register) await phone.register();
    return phone;
  }

  /** The app registers, then iOS puts it to sleep: its WebSocket dies, its binding stays (asleep). */
  async asleep(app: IosApp, settleMs = 200): Promise<void> {
    await (await this.phone(app)).sleep();
    await new Promise((r) => setTimeout(r, settleMs));
  }

  /** The pushes the APNs delivered to the app's token, of one kind ('call', 'cancel') or all. */
  pushesTo(token: string, kind?: string): ApnsPush[] {
    return this.options.apns.pushes.filter((p) => p.token === token && (kind === undefined || p.payload.kind === kind));
  }

  async stop(): Promise<void> {
    for (const p of this.phones) await p.stop();
  }
}
