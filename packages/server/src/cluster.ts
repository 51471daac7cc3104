import cluster, { type Worker } from 'node:cluster';
import type { Config } from './config/load.js';
import type { Logger } from './observability/logger.js';

/** A worker that dies sooner than this after its start counts as a crash loop. */
const EARLY_EXIT_MS = 5000;
/** Crash-looping workers in a row before the primary gives up (a bad config, Redis auth, …). */
const MAX_EARLY_EXITS = 5;

/**
 * `serve --workers N`: N worker processes, each a full Switchboard node,
 * sharing the listening port (node:cluster hands connections round-robin).
 * Nodes share state through the Redis engine, so no sticky sessions are
 * needed; a worker that dies is replaced (with a growing pause when it keeps
 * dying at start). SIGTERM/SIGINT drain every worker (3001 to its clients)
 * and exit when all are gone, or kill them after shutdown.timeout.
 */
export async function runCluster(config: Config, log: Logger): Promise<void> {
  if (config.engine.type !== 'redis') {
    throw new Error(
      '--workers needs engine.type "redis": workers are separate nodes and share channels, history and presence through Redis',
    );
  }
  if (!cluster.isPrimary) throw new Error('runCluster must run in the primary process');
  const n = config.workers;
  const env = { SWITCHBOARD_WORKER_CONFIG: JSON.stringify(config) };
  const startedAt = new Map<Worker, number>();
  let stopping = false;
  let earlyExits = 0;

  const fork = (): void => {
    const w = cluster.fork(env);
    startedAt.set(w, Date.now());
  };
  for (let i = 0; i < n; i++) fork();

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    if (stopping) return;
    earlyExits = lived < EARLY_EXIT_MS ? earlyExits + 1 : 0;
    if (earlyExits >= MAX_EARLY_EXITS) {
      log.fatal({ pid: worker.process.pid, code, signal }, `workers keep exiting at start (${earlyExits} in a row); giving up`);
      stop('crash loop', 1);
      return;
    }
    const delay = earlyExits > 0 ? Math.min(100 * 2 ** earlyExits, 5000) : 0;
    log.warn({ pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited; starting another');
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });

  const stop = (reason: string, exitCode = 0): void => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    const force = setTimeout(() => {
      log.error('workers did not stop in time; killing them');
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      process.exit(1);
    }, config.shutdown.timeout + 5000);
    force.unref();
    const check = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(check);
        process.exit(exitCode);
      }
    }, 50);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ workers: n, port: config.http_server.port }, 'switchboard cluster started');
}
