/**
 * The admin page: with an admin token (pasted, kept in this tab's sessionStorage only) it polls the server every
 * POLL_MS: /v1/health for the live counters and the backends with their health, /v1/active-calls,
 * /v1/registrations and /v1/bans. Each active call has a "Hang up" button (DELETE /v1/active-calls/:id: BYE to
 * both sides of an answered call, CANCEL of a ringing one).
 */
import { ApiError, api, byId, fillTable, reason, timeOf } from './dom.js';

const POLL_MS = 2000;
const TOKEN_KEY = 'softswitch.adminToken';

interface Party { uri: string; user?: string; domain?: string; number?: string; displayName?: string }
interface ActiveCall { id: string; caller: Party; callee: Party; state: string; createdAt: string; answeredAt?: string; mediaRelayed: boolean; mediaNode?: string }
interface Registration { aor: string; transport: string; address: string; userAgent?: string; expiresAt: string; push?: string; asleep: boolean }
interface Backend { set: string; uri: string; health: string; enabled: boolean; activeCalls: number }
interface Ban { address: string; reason: string; until: string }
interface Health {
  ok: boolean;
  registrations?: number;
  dialogs?: { active: number; early: number; confirmed: number };
  transactions?: Record<string, number>;
  messages?: Record<string, number>;
  security?: Record<string, unknown>;
  backends?: Backend[];
  rtpengine?: Array<{ node: string; up: boolean; calls: number }>;
}

const status = byId('status');
let timer: number | undefined;

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

const party = (p: Party): string => (p.user !== undefined ? `${p.user}@${p.domain ?? ''}` : p.number ?? p.uri);

/** The numbers worth watching, flattened: `name → value`. */
function counters(h: Health): Array<[string, string]> {
  const out: Array<[string, string]> = [['status', h.ok ? 'ok' : 'NOT OK']];
  if (h.registrations !== undefined) out.push(['registrations', String(h.registrations)]);
  if (h.dialogs !== undefined) out.push(['calls active', String(h.dialogs.active)], ['calls ringing', String(h.dialogs.early)], ['calls answered', String(h.dialogs.confirmed)]);
  for (const [group, values] of [['transactions', h.transactions], ['messages', h.messages]] as const) {
    for (const [k, v] of Object.entries(values ?? {})) if (typeof v === 'number') out.push([`${group} ${k}`, String(v)]);
  }
  for (const [k, v] of Object.entries(h.security ?? {})) if (typeof v === 'number') out.push([`security ${k}`, String(v)]);
  for (const n of h.rtpengine ?? []) out.push([`rtpengine ${n.node}`, `${n.up ? 'up' : 'DOWN'}, ${n.calls} calls`]);
  return out;
}

async function refresh(token: string): Promise<void> {
  try {
    const [health, calls, registrations, bans] = await Promise.all([
      // /v1/health answers 503 with the same body when the server is not ok: still worth showing.
      api<Health>('/v1/health', token).catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 503) return { ok: false } as Health;
        throw err;
      }),
      api<{ calls: ActiveCall[]; workersMissing?: number }>('/v1/active-calls', token),
      api<{ registrations: Registration[] }>('/v1/registrations', token),
      api<{ bans: Ban[] }>('/v1/bans', token),
    ]);
    const dl = byId('counters');
    dl.replaceChildren(...counters(health).map(([name, value]) => {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = name;
      dd.textContent = value;
      div.append(dt, dd);
      return div;
    }));
    const callRows = byId<HTMLTableSectionElement>('calls');
    fillTable(callRows, calls.calls.map((c) => [
      party(c.caller), party(c.callee), c.state, timeOf(c.createdAt), timeOf(c.answeredAt), c.mediaRelayed ? `relayed (${c.mediaNode ?? ''})` : 'end to end',
    ]));
    calls.calls.forEach((c, i) => callRows.rows[i]?.append(hangupCell(c, token)));
    fillTable(byId<HTMLTableSectionElement>('registrations'), registrations.registrations.map((r) => [
      r.aor, r.transport, r.address, r.userAgent ?? '', timeOf(r.expiresAt), r.push === undefined ? '' : `${r.push}${r.asleep ? ' (asleep)' : ''}`,
    ]));
    fillTable(byId<HTMLTableSectionElement>('backends'), (health.backends ?? []).map((b) => [b.set, b.uri, b.enabled ? b.health : 'disabled', String(b.activeCalls)]));
    fillTable(byId<HTMLTableSectionElement>('bans'), bans.bans.map((b) => [b.address, b.reason, timeOf(b.until)]));
    const missing = calls.workersMissing ?? 0;
    say(`Updated ${new Date().toLocaleTimeString()}${missing > 0 ? ` (${missing} worker(s) did not list their calls)` : ''}`, missing > 0);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forget();
      say(`The token was refused: ${err.message}`, true);
      return;
    }
    say(`Cannot read the server: ${reason(err)}`, true);
  }
}

/** What the last hang-up did, under the calls table (the status line is the poll's). */
function saidOfCalls(text: string, error = false): void {
  const line = byId('call-action');
  line.textContent = text;
  line.classList.toggle('error', error);
}

/** The cell with the call's "Hang up" button: DELETE /v1/active-calls/:id, then the line under the table says what was done. */
function hangupCell(call: ActiveCall, token: string): HTMLTableCellElement {
  const td = document.createElement('td');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'small';
  button.textContent = 'Hang up';
  button.dataset.hangup = call.id;
  button.addEventListener('click', () => {
    button.disabled = true;
    button.textContent = 'Hanging up…';
    const who = `${party(call.caller)} → ${party(call.callee)}`;
    api<{ action: 'bye' | 'cancel' }>(`/v1/active-calls/${encodeURIComponent(call.id)}`, token, { method: 'DELETE' }).then(
      (r) => saidOfCalls(r.action === 'bye' ? `Hung up ${who}: BYE sent to both sides` : `Hung up ${who} while it rang: CANCEL sent, the caller gets 487`),
      (err: unknown) => {
        button.disabled = false;
        button.textContent = 'Hang up';
        saidOfCalls(`Could not hang up ${who}: ${reason(err)}`, true);
      },
    );
  });
  td.append(button);
  return td;
}

function open(token: string): void {
  byId('token-form').hidden = true;
  byId('dashboard').hidden = false;
  const tick = async (): Promise<void> => {
    await refresh(token);
    if (sessionStorage.getItem(TOKEN_KEY) !== null) timer = window.setTimeout(() => void tick(), POLL_MS);
  };
  void tick();
}

function forget(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  window.clearTimeout(timer);
  byId('dashboard').hidden = true;
  byId('token-form').hidden = false;
}

byId<HTMLFormElement>('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = byId<HTMLInputElement>('token');
  const token = input.value.trim();
  input.value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  open(token);
});
byId('forget').addEventListener('click', () => {
  forget();
  say('Token forgotten');
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved !== null) open(saved);
else say('Paste an admin token');
