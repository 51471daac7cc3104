/**
 * Cleanup scopes: a test's context (`t`) or a file-wide `scope()` for what
 * the tests of one file share. Everything a helper starts registers its
 * cleanup here, so it is stopped when the test ends, passed or failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What helpers need of node:test's TestContext (and of `scope()`). */
export interface TestContextLike {
  after(fn: () => unknown): void;
}

/**
 * A cleanup scope for resources shared by the tests of one file:
 * `const S = scope(); after(() => S.close());` then `startServer(S, …)` in `before`.
 * Cleanups run in reverse order.
 */
export function scope(): TestContextLike & { close(): Promise<void> } {
  const fns: Array<() => unknown> = [];
  return {
    after(fn) {
      fns.push(fn);
    },
    async close() {
      while (fns.length > 0) {
        try {
          await fns.pop()!();
        } catch {
          /* keep cleaning */
        }
      }
    },
  };
}

/** A temporary directory removed when `t` ends. */
export function tempDir(t: TestContextLike): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
