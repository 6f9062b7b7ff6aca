/**
 * `bugzot serve` with WORKERS > 1: a primary process forks that many workers (node:cluster), which share one
 * TCP port or unix socket; the primary serves nothing itself.
 *
 * - A worker that dies is replaced (with a pause when they keep dying at start, so a broken release does not spin).
 * - SIGHUP restarts the workers one at a time: the replacement listens before the old one is asked to stop, and the
 *   old one finishes its in-flight requests (its own SIGTERM path), so no request is refused or cut.
 * - SIGTERM / SIGINT: every worker drains and exits; then the primary exits 0 (1 when a worker had to be killed).
 * - /metrics in a worker answers for the whole cluster: it asks the primary, which gathers every worker's registry
 *   (prom-client's AggregatorRegistry over the cluster's IPC channel).
 */
import cluster, { type Worker } from 'node:cluster';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { AggregatorRegistry } from 'prom-client';

/** How the primary reports what it does (the pino logger of `serve`, or stderr). */
export interface ClusterLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PrimaryOptions {
  workers: number;
  log: ClusterLog;
  /** The unix socket the workers listen on, if any: removed before start and after stop, chmod'ed when ready. */
  socket?: string | undefined;
  socketMode?: number;
  /** How long a worker gets to drain on stop or rolling restart before it is killed. */
  drainMs?: number;
}

/** The message a worker sends when it wants the cluster's metrics, and the primary's answer. */
interface MetricsAsk {
  type: 'bugzot:metrics?';
  id: number;
}
interface MetricsAnswer {
  type: 'bugzot:metrics';
  id: number;
  text?: string;
  error?: string;
}

const START_TIMEOUT_MS = 60_000;

/** Whether this process is a worker forked by the primary below. */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** Runs the primary until it is told to stop; resolves with the exit code to use. */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { log, workers: count, socket } = opts;
  const drainMs = opts.drainMs ?? 30_000;
  const aggregator = new AggregatorRegistry();
  if (socket && existsSync(socket)) rmSync(socket);

  /** Workers that serve now (not those being retired). */
  const serving = new Set<Worker>();
  let stopping = false;
  let rolling = false;
  let killedAny = false;
  let quickDeaths = 0;

  const fork = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const worker = cluster.fork({ BUGZOT_CLUSTER_WORKER: '1' });
      const timer = setTimeout(() => {
        worker.process.kill('SIGKILL');
        reject(new Error(`worker ${worker.process.pid} did not listen within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      worker.once('listening', () => {
        clearTimeout(timer);
        if (socket && opts.socketMode !== undefined) chmodSync(socket, opts.socketMode);
        serving.add(worker);
        resolve(worker);
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(timer);
        const wasServing = serving.delete(worker);
        if (stopping || !wasServing) {
          if (!wasServing && !stopping && !rolling)
            reject(new Error(`worker exited at start (code ${code})`));
          return;
        }
        // An unexpected death: replace it, pausing when workers keep dying young.
        quickDeaths = Date.now() - started < 10_000 ? quickDeaths + 1 : 0;
        const pause = Math.min(30_000, 500 * 2 ** Math.min(quickDeaths, 6));
        log.warn(
          { pid: worker.process.pid, code, signal, restart_in_ms: pause },
          'worker died; replacing it',
        );
        setTimeout(() => {
          if (!stopping) fork().catch((err) => log.error({ err }, 'replacement worker failed to start'));
        }, pause).unref();
      });
      worker.on('message', (msg: MetricsAsk) => {
        if (msg?.type !== 'bugzot:metrics?') return;
        aggregator
          .clusterMetrics()
          .then((text) => worker.send({ type: 'bugzot:metrics', id: msg.id, text } satisfies MetricsAnswer))
          .catch((err: Error) =>
            worker.send({ type: 'bugzot:metrics', id: msg.id, error: err.message } satisfies MetricsAnswer),
          );
      });
    });

  /** Asks one worker to drain and waits for it to exit (killing it after drainMs). */
  const retire = (worker: Worker): Promise<void> =>
    new Promise((resolve) => {
      serving.delete(worker);
      if (worker.isDead()) return resolve();
      const timer = setTimeout(() => {
        killedAny = true;
        log.error({ pid: worker.process.pid }, `worker did not drain within ${drainMs / 1000} s; killing it`);
        worker.process.kill('SIGKILL');
      }, drainMs);
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.process.kill('SIGTERM');
    });

  const rollingRestart = async () => {
    if (rolling || stopping) return;
    rolling = true;
    // Every live worker, including one still starting (a replacement for a dead one, say): all get the new code.
    const old = Object.values(cluster.workers ?? {}).flatMap((w) => (w && !w.isDead() ? [w] : []));
    log.info({ workers: old.length }, 'SIGHUP: restarting workers one at a time');
    try {
      for (const worker of old) {
        if (stopping) break;
        const fresh = await fork();
        log.info(
          { old: worker.process.pid, new: fresh.process.pid },
          'worker replaced; draining the old one',
        );
        await retire(worker);
      }
      log.info({ workers: serving.size }, 'rolling restart done');
    } catch (err) {
      log.error({ err }, 'rolling restart stopped: a new worker failed to start; the old ones keep serving');
    } finally {
      rolling = false;
    }
  };

  return new Promise((resolve) => {
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'stopping: workers drain');
      await Promise.all(Object.values(cluster.workers ?? {}).flatMap((w) => (w ? [retire(w)] : [])));
      if (socket && existsSync(socket)) rmSync(socket);
      resolve(killedAny ? 1 : 0);
    };
    process.on('SIGHUP', () => void rollingRestart());
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    Promise.all(Array.from({ length: count }, () => fork()))
      .then(() => log.info({ workers: count, socket }, 'all workers serving'))
      .catch(async (err: Error) => {
        log.error({ err }, 'workers failed to start');
        await stop('start failure');
      });
  });
}

let nextAsk = 0;

/**
 * In a worker: the Prometheus text of every worker together, gathered by the primary. Outside a cluster, or when
 * the primary does not answer in time, undefined (the caller then answers with this process's own registry).
 */
export function clusterMetrics(timeoutMs = 5_000): Promise<string | undefined> {
  const send = process.send?.bind(process);
  if (!cluster.isWorker || !send) return Promise.resolve(undefined);
  const id = ++nextAsk;
  return new Promise((resolve) => {
    const onMessage = (msg: MetricsAnswer) => {
      if (msg?.type !== 'bugzot:metrics' || msg.id !== id) return;
      done(msg.text);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const done = (text: string | undefined) => {
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(text);
    };
    process.on('message', onMessage);
    send({ type: 'bugzot:metrics?', id } satisfies MetricsAsk);
  });
}
