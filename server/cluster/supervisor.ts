/**
 * The primary process of `softswitch start --workers N`: it only supervises. It forks the N workers
 * (node:cluster re-runs the same command line in each, with the worker index in the environment),
 * relays what the workers tell each other (hand-over ports, binding changes), restarts a worker that
 * died after it had started, and forwards SIGTERM/SIGINT (each worker drains, then exits). SIGHUP is a
 * rolling restart: one slot after the other, a new worker is forked, gets every binding, starts listening,
 * and only then is the old one told to drain (cluster-worker.ts says how datagrams find the right one
 * meanwhile); the next slot follows once the old worker has exited. It binds no SIP socket of its own:
 * node:cluster creates the shared listeners here on the workers' behalf.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { categoryLogger, type Logger } from '../../src/log/index.js';
import type { Ban, BanChange } from '../../security/index.js';
import { CLUSTER_SECRET_ENV, type PrimaryMessage, type WorkerMessage, WORKER_GENERATION_ENV, WORKER_INDEX_ENV } from './types.js';

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  /** A worker that died is forked again after this long, ms. Default 1000. */
  restartDelayMs?: number;
  /** How long workers may take to stop on SIGTERM (they drain first) before they are killed, ms. Default 10000. */
  stopTimeoutMs?: number;
  /** How long a joining worker waits for the running workers' bindings before it starts anyway, ms. Default 5000. */
  syncTimeoutMs?: number;
}

interface Slot {
  worker: Worker | undefined;
  port: number | null;
  /** Forks of this slot so far, minus one: the generation of `worker`. */
  generation: number;
  /** The worker of this slot has reported its server listening at least once. */
  everStarted: boolean;
  started: boolean;
  /** During a rolling restart: the old worker of the slot, until it has drained and exited. */
  draining: { worker: Worker; port: number; generation: number } | undefined;
}

/** Runs the cluster until SIGTERM/SIGINT; resolves with the exit code (1 when a worker fails to start). */
export function runSupervisor(options: SupervisorOptions): Promise<number> {
  const { workers } = options;
  if (!Number.isInteger(workers) || workers < 2) throw new TypeError(`the supervisor runs 2 workers or more, got ${workers}`);
  const log = categoryLogger(options.logger, 'cluster');
  const restartDelayMs = options.restartDelayMs ?? 1000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const syncTimeoutMs = options.syncTimeoutMs ?? 5000;
  const slots: Slot[] = Array.from({ length: workers }, () => ({
    worker: undefined, port: null, generation: -1, everStarted: false, started: false, draining: undefined,
  }));
  /** Joining workers waiting for cluster:synced, by slot: the timer that sends it anyway. */
  const syncing = new Map<number, NodeJS.Timeout>();
  let stopping = false;
  let announced = false;
  let othersForked = false;
  /** Slots still to be replaced by the rolling restart under way (undefined: none under way). */
  let rollingQueue: number[] | undefined;

  return new Promise<number>((resolveExit) => {
    const finish = (code: number): void => {
      process.off('SIGTERM', onSigterm);
      process.off('SIGINT', onSigint);
      process.off('SIGHUP', onSighup);
      resolveExit(code);
    };

    const send = (worker: Worker | undefined, message: PrimaryMessage): void => {
      // A worker that is exiting can still look connected: the write then fails (EPIPE) after the check.
      // With a callback the failure comes here instead of as an 'error' event that would end the primary.
      if (worker !== undefined && worker.isConnected()) {
        worker.send(message, undefined, (err: Error | null) => {
          if (err !== null) log.debug({ worker: worker.id, type: message.type, err: err.message }, 'message to an exiting worker not delivered');
        });
      }
    };

    /** The bans the workers decided, kept here for workers that join later (a restart). */
    const bans = new Map<string, Ban>();
    const remember = (change: BanChange): void => {
      if (change.kind === 'lift') bans.delete(change.address);
      else if (typeof change.ban?.address === 'string') bans.set(change.ban.address, change.ban);
    };
    const bansInForce = (): Ban[] => {
      const now = Date.now();
      for (const [a, b] of bans) if (b.until <= now) bans.delete(a);
      return [...bans.values()];
    };

    const broadcast = (message: PrimaryMessage, except?: Worker): void => {
      for (const s of slots) {
        if (s.worker !== except) send(s.worker, message);
        if (s.draining !== undefined && s.draining.worker !== except) send(s.draining.worker, message);
      }
    };

    const peers = (): void => broadcast({
      type: 'cluster:peers',
      ports: slots.map((s) => s.port),
      generations: slots.map((s) => Math.max(0, s.generation)),
      draining: slots.map((s) => (s.draining === undefined ? null : { port: s.draining.port, generation: s.draining.generation })),
    });

    const synced = (index: number): void => {
      const timer = syncing.get(index);
      if (timer === undefined) return;
      clearTimeout(timer);
      syncing.delete(index);
      send(slots[index]!.worker, { type: 'cluster:synced' });
    };

    /** A worker joins: a running one (any) sends it every binding first (finding: a replacement must relay to the others' phones). */
    const sync = (index: number): void => {
      const joiner = slots[index]!.worker;
      let donor: Worker | undefined;
      slots.forEach((s, i) => {
        if (donor !== undefined) return;
        if (s.draining !== undefined && s.draining.worker.isConnected()) donor = s.draining.worker;
        else if (i !== index && s.started && s.worker?.isConnected() === true) donor = s.worker;
      });
      syncing.set(index, setTimeout(() => {
        log.warn({ worker: index }, 'bindings of the running workers did not arrive in time; starting without');
        synced(index);
      }, syncTimeoutMs));
      if (donor === undefined || donor === joiner) synced(index);
      else send(donor, { type: 'cluster:announce', to: index });
    };

    const stopAll = (reason: string, code: number): void => {
      if (stopping) return;
      stopping = true;
      log.info({ reason }, 'stopping workers');
      for (const timer of syncing.values()) clearTimeout(timer);
      for (const s of slots) {
        s.worker?.process.kill('SIGTERM');
        s.draining?.worker.process.kill('SIGTERM');
      }
      const killer = setTimeout(() => {
        for (const s of slots) {
          s.worker?.process.kill('SIGKILL');
          s.draining?.worker.process.kill('SIGKILL');
        }
      }, stopTimeoutMs);
      const check = (): void => {
        if (slots.every((s) => s.worker === undefined && s.draining === undefined)) {
          clearTimeout(killer);
          log.info({ code }, 'stopped');
          finish(code);
        }
      };
      // The slot is cleared by the worker's own 'exit' listener; look once that has run.
      cluster.on('exit', () => setImmediate(check));
      check();
    };

    /** The next slot of the rolling restart: its worker drains once a new one of the next generation listens. */
    const rollNext = (): void => {
      if (stopping || rollingQueue === undefined) return;
      const index = rollingQueue.shift();
      if (index === undefined) {
        rollingQueue = undefined;
        log.info('rolling restart done');
        return;
      }
      const slot = slots[index]!;
      if (slot.worker === undefined || !slot.started || slot.port === null) {
        rollNext(); // down: it is being restarted anyway
        return;
      }
      log.info({ worker: index, pid: slot.worker.process.pid }, 'rolling restart: replacing worker');
      slot.draining = { worker: slot.worker, port: slot.port, generation: slot.generation };
      slot.worker = undefined;
      slot.port = null;
      slot.started = false;
      fork(index);
      peers();
    };

    const secret = randomBytes(32).toString('hex');
    const fork = (index: number): void => {
      const slot = slots[index]!;
      slot.generation++;
      const generation = slot.generation;
      const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index), [WORKER_GENERATION_ENV]: String(generation), [CLUSTER_SECRET_ENV]: secret });
      // An IPC failure with one worker (it is exiting) is that worker's end, never the primary's.
      worker.on('error', (err: Error) => log.warn({ worker: index, err: err.message }, 'worker channel error'));
      slot.worker = worker;
      slot.started = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m === null || typeof m !== 'object') return;
        switch (m.type) {
          case 'cluster:port':
            if (slot.worker !== worker) return;
            slot.port = m.port;
            // The bans in force reach a joining worker before it listens.
            for (const ban of bansInForce()) send(worker, { type: 'cluster:ban', from: -1, change: { kind: 'ban', ban } });
            if (index === 0 && !othersForked) {
              othersForked = true;
              for (let i = 1; i < workers; i++) fork(i);
            }
            // Every worker waits for the whole table before it starts listening.
            if (slots.every((s) => s.port !== null)) peers();
            sync(index);
            return;
          case 'cluster:started':
            if (slot.worker !== worker) return;
            slot.started = true;
            slot.everStarted = true;
            if (!announced && slots.every((s) => s.started)) {
              announced = true;
              log.info({ workers, pids: slots.map((s) => s.worker?.process.pid) }, 'cluster started');
            }
            // Rolling restart: the new worker listens, so the old one can hand it what is not its own.
            if (slot.draining !== undefined && slot.port !== null) send(slot.draining.worker, { type: 'cluster:drain', successor: slot.port });
            return;
          case 'cluster:location':
          case 'cluster:reload':
          case 'cluster:dialog-end':
          case 'cluster:dialog-cseq':
          case 'cluster:chat':
          case 'cluster:meeting':
          case 'cluster:presence':
          case 'cluster:ask':
            broadcast(m, worker);
            return;
          case 'cluster:answer': {
            // To the processes of the asker's slot (during a rolling restart both; the generation tells).
            const asker = typeof m.to === 'number' ? slots[m.to] : undefined;
            send(asker?.worker, m);
            send(asker?.draining?.worker, m);
            return;
          }
          case 'cluster:ban':
            remember(m.change);
            broadcast(m, worker);
            return;
          case 'cluster:nonce': {
            // To the processes of the issuer's slot (only the one of the nonce's incarnation answers);
            // none but the asker: not claimed, at once.
            const target = typeof m.to === 'number' ? slots[m.to] : undefined;
            const candidates = [target?.worker, target?.draining?.worker].filter((w): w is Worker => w !== undefined && w !== worker && w.isConnected());
            if (candidates.length === 0) send(worker, { type: 'cluster:nonce-answer', to: m.from, toIncarnation: m.fromIncarnation, id: m.id, ok: false });
            for (const w of candidates) send(w, m);
            return;
          }
          case 'cluster:nonce-answer': {
            const asker = typeof m.to === 'number' ? slots[m.to] : undefined;
            // The asker may be the draining predecessor of its slot: both get it, the incarnation tells.
            send(asker?.worker, m);
            send(asker?.draining?.worker, m);
            return;
          }
          case 'cluster:dialogs':
            // To the new worker of the slot (its draining predecessor sent them).
            if (typeof m.to === 'number') send(slots[m.to]?.worker, m);
            return;
          case 'cluster:snapshot': {
            const to = typeof m.to === 'number' ? slots[m.to] : undefined;
            if (to === undefined) return;
            send(to.worker, m);
            if (m.last === true) synced(m.to);
            return;
          }
        }
      });
      worker.on('exit', (code, signal) => {
        if (slot.draining?.worker === worker) {
          // The old worker of a rolling restart has drained (or died): its slot is the new worker's alone.
          const gone = slot.draining.generation;
          slot.draining = undefined;
          if (stopping) return;
          log.info({ worker: index, pid: worker.process.pid, code, signal }, 'rolling restart: old worker exited');
          peers();
          broadcast({ type: 'cluster:down', index, generation: gone });
          rollNext();
          return;
        }
        if (slot.worker !== worker) return;
        slot.worker = undefined;
        slot.port = null;
        slot.started = false;
        const timer = syncing.get(index);
        if (timer !== undefined) clearTimeout(timer);
        syncing.delete(index);
        if (stopping) {
          // The others, still draining, handle this slot's datagrams themselves from now on.
          peers();
          return;
        }
        log.warn({ worker: index, pid: worker.process.pid, code, signal }, 'worker exited');
        if (slot.draining !== undefined) {
          // The new worker of a rolling restart died before it took over: the old one stays, the rolling restart stops.
          log.error({ worker: index }, 'rolling restart: the new worker failed; the old one keeps running');
          slot.worker = slot.draining.worker;
          slot.port = slot.draining.port;
          slot.generation = slot.draining.generation;
          slot.started = true;
          slot.draining = undefined;
          rollingQueue = undefined;
          peers();
          return;
        }
        broadcast({ type: 'cluster:down', index, generation });
        peers();
        if (!slot.everStarted) {
          // It never listened (a port in use, an unreadable certificate…): restarting would loop.
          stopAll(`worker ${index} failed to start`, 1);
          return;
        }
        setTimeout(() => {
          if (!stopping) fork(index);
        }, restartDelayMs).unref();
      });
    };

    const onSigterm = (): void => stopAll('SIGTERM', 0);
    const onSigint = (): void => stopAll('SIGINT', 0);
    const onSighup = (): void => {
      if (stopping) return;
      if (rollingQueue !== undefined || !slots.every((s) => s.started)) {
        log.warn('rolling restart asked while one is under way or a worker is starting; ignored');
        return;
      }
      log.info({ workers }, 'rolling restart (SIGHUP)');
      rollingQueue = slots.map((_, i) => i);
      rollNext();
    };
    process.on('SIGTERM', onSigterm);
    process.on('SIGINT', onSigint);
    process.on('SIGHUP', onSighup);
    log.info({ workers }, 'starting workers');
    // Worker 0 first: it opens the store (and brings its schema up to date) before the others open it,
    // since two processes migrating one SQLite file at once fail. It reports its port once it has.
    fork(0);
  });
}
