/**
 * The map role's engine contract (helpers/map-contract.ts) on the memory
 * engine and on the Redis engine (the machine's Redis, a key prefix of this
 * run's own).
 */
import { loadConfig } from '../src/config/load.js';
import { MemoryEngine } from '../src/engine/memory/engine.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { mapContract } from './helpers/map-contract.js';
import { SHARED_REDIS, uniquePrefix } from './helpers/redis.js';

mapContract('memory', () => new MemoryEngine({ maps: { cleanupIntervalMs: 100 } }));
mapContract(
  'redis',
  () =>
    new RedisEngine(
      loadConfig({
        object: {
          log: { level: 'error' },
          engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix: uniquePrefix('mapcontract') } },
        },
      }).config,
      { maps: { cleanupIntervalMs: 100 } },
    ),
);
