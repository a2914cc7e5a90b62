/**
 * The primary process of `softswitch start --workers N`: it only supervises. It forks the N workers
 * (node:cluster re-runs the same command line in each, with the worker index in the environment),
 * relays what the workers tell each other (hand-over ports, binding changes), restarts a worker that
 * died after it had started, and forwards SIGTERM/SIGINT. It binds no SIP socket of its own: node:cluster
 * creates the shared listeners here on the workers' behalf.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { categoryLogger, type Logger } from '../log/index.js';
import { CLUSTER_SECRET_ENV, type PrimaryMessage, type WorkerMessage, WORKER_INDEX_ENV } from './types.js';

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  /** A worker that died is forked again after this long, ms. Default 1000. */
  restartDelayMs?: number;
  /** How long workers may take to stop on SIGTERM before they are killed, ms. Default 10000. */
  stopTimeoutMs?: number;
}

interface Slot {
  worker: Worker | undefined;
  port: number | null;
  /** The worker of this slot has reported its server listening at least once. */
  everStarted: boolean;
  started: boolean;
}

/** Runs the cluster until SIGTERM/SIGINT; resolves with the exit code (1 when a worker fails to start). */
export function runSupervisor(options: SupervisorOptions): Promise<number> {
  const { workers } = options;
  if (!Number.isInteger(workers) || workers < 2) throw new TypeError(`the supervisor runs 2 workers or more, got ${workers}`);
  const log = categoryLogger(options.logger, 'cluster');
  const restartDelayMs = options.restartDelayMs ?? 1000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const slots: Slot[] = Array.from({ length: workers }, () => ({ worker: undefined, port: null, everStarted: false, started: false }));
  let stopping = false;
  let announced = false;
  let othersForked = false;

  return new Promise<number>((resolveExit) => {
    const finish = (code: number): void => {
      process.off('SIGTERM', onSigterm);
      process.off('SIGINT', onSigint);
      resolveExit(code);
    };

    const broadcast = (message: PrimaryMessage, except?: number): void => {
      slots.forEach((s, i) => {
        if (i === except || s.worker === undefined || !s.worker.isConnected()) return;
        s.worker.send(message);
      });
    };

    const peers = (): void => broadcast({ type: 'cluster:peers', ports: slots.map((s) => s.port) });

    const stopAll = (reason: string, code: number): void => {
      if (stopping) return;
      stopping = true;
      log.info({ reason }, 'stopping workers');
      for (const s of slots) s.worker?.process.kill('SIGTERM');
      const killer = setTimeout(() => {
        for (const s of slots) s.worker?.process.kill('SIGKILL');
      }, stopTimeoutMs);
      const check = (): void => {
        if (slots.every((s) => s.worker === undefined)) {
          clearTimeout(killer);
          log.info({ code }, 'stopped');
          finish(code);
        }
      };
      // The slot is cleared by the worker's own 'exit' listener; look once that has run.
      cluster.on('exit', () => setImmediate(check));
      check();
    };

    const secret = randomBytes(32).toString('hex');
    const fork = (index: number): void => {
      const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index), [CLUSTER_SECRET_ENV]: secret });
      const slot = slots[index]!;
      slot.worker = worker;
      slot.started = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m === null || typeof m !== 'object') return;
        switch (m.type) {
          case 'cluster:port':
            slot.port = m.port;
            if (index === 0 && !othersForked) {
              othersForked = true;
              for (let i = 1; i < workers; i++) fork(i);
            }
            // Every worker waits for the whole table before it starts listening.
            if (slots.every((s) => s.port !== null)) peers();
            return;
          case 'cluster:started':
            slot.started = true;
            slot.everStarted = true;
            if (!announced && slots.every((s) => s.started)) {
              announced = true;
              log.info({ workers, pids: slots.map((s) => s.worker?.process.pid) }, 'cluster started');
            }
            return;
          case 'cluster:location':
          case 'cluster:reload':
            broadcast(m, index);
            return;
        }
      });
      worker.on('exit', (code, signal) => {
        if (slot.worker === worker) {
          slot.worker = undefined;
          slot.port = null;
          slot.started = false;
        }
        if (stopping) return;
        log.warn({ worker: index, pid: worker.process.pid, code, signal }, 'worker exited');
        broadcast({ type: 'cluster:down', index });
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
    process.on('SIGTERM', onSigterm);
    process.on('SIGINT', onSigint);
    log.info({ workers }, 'starting workers');
    // Worker 0 first: it opens the store (and brings its schema up to date) before the others open it,
    // since two processes migrating one SQLite file at once fail. It reports its port once it has.
    fork(0);
  });
}
