import cluster from 'node:cluster';
import type { Config } from './config/load.js';
import type { Logger } from './observability/logger.js';

/**
 * `serve --workers N`: N worker processes, each a full Switchboard node,
 * sharing the listening port (node:cluster hands connections round-robin).
 * Nodes share state through the Redis engine, so no sticky sessions are
 * needed; a worker that dies is replaced.
 */
export async function runCluster(config: Config, log: Logger): Promise<void> {
  if (config.engine.type !== 'redis') {
    throw new Error('--workers needs engine.type "redis": workers are separate nodes and share channels, history and presence through Redis');
  }
  if (!cluster.isPrimary) throw new Error('runCluster must run in the primary process');
  const n = config.workers;
  const env = { SWITCHBOARD_WORKER_CONFIG: JSON.stringify(config) };
  let stopping = false;
  for (let i = 0; i < n; i++) cluster.fork(env);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.warn({ pid: worker.process.pid, code, signal }, 'worker exited; starting another');
    cluster.fork(env);
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    const check = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(check);
        process.exit(0);
      }
    }, 100);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ workers: n, port: config.http_server.port }, 'switchboard cluster started');
}
