/**
 * Preloaded into the Switchboard processes the bench starts (`--expose-gc
 * --import`): SIGUSR2 runs a full GC, so the idle scenario reads memory
 * without the garbage of the connect phase, as the peers' /stats does.
 * Not part of the server; only the harness loads it.
 */
const gc = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => gc?.());
