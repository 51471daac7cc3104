/**
 * The map role's engine contract (helpers/map-contract.ts) on the memory
 * engine; the Redis engine's run is added next to it.
 */
import { MemoryEngine } from '../src/engine/memory/engine.js';
import { mapContract } from './helpers/map-contract.js';

mapContract('memory', () => new MemoryEngine({ maps: { cleanupIntervalMs: 100 } }));
