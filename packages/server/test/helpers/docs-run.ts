/**
 * Runs what the docs tell a user to run: shell lines through bash from the
 * repo root, JS/TS snippets as ES modules that resolve packages the way a
 * file in the clone does. Each process runs in its own process group so
 * that `npx` and its children are stopped together when the test ends.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { REPO } from './docs.js';
import type { TestContextLike } from './scope.js';
import { cleanEnv, type Exit, type Launched } from './server.js';
import { GiveUp, until } from './wait.js';

/**
 * The environment for doc commands: no SWITCHBOARD_* from the parent, and
 * `npx` never installs (a missing local bin must fail, not fetch a package
 * of the same name from the registry).
 */
export function docEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...cleanEnv(), npm_config_yes: 'false', npm_config_update_notifier: 'false', ...extra };
}

/** Starts `bash -c cmd` (cwd: repo root) in its own process group, killed when `t` ends. */
export function startShell(t: TestContextLike, cmd: string, env: NodeJS.ProcessEnv = docEnv(), cwd = REPO): Launched {
  const proc = spawn('bash', ['-c', cmd], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  let done = false;
  const exited = new Promise<Exit>((res) =>
    proc.on('exit', (code, signal) => {
      done = true;
      res({ code, signal });
    }),
  );
  const group = proc.pid!;
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-group, signal);
    } catch {
      /* the group is gone */
    }
  };
  t.after(async () => {
    killGroup('SIGKILL');
    if (!done) await exited;
  });
  return {
    proc,
    exited,
    stdout: () => out,
    stderr: () => err,
    alive: () => !done,
    kill: (signal = 'SIGKILL') => killGroup(signal),
  };
}

/** Runs `cmd` to completion; rejects with its output if it exits non-zero (or `expectCode` differs). */
export async function runShell(
  t: TestContextLike,
  cmd: string,
  env: NodeJS.ProcessEnv = docEnv(),
  opts: { cwd?: string; timeoutMs?: number; expectCode?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  const p = startShell(t, cmd, env, opts.cwd);
  let exit: Exit | undefined;
  void p.exited.then((e) => (exit = e));
  await until(`"${cmd}" to exit`, opts.timeoutMs ?? 60_000, () => exit !== undefined);
  if (exit!.code !== (opts.expectCode ?? 0)) {
    throw new Error(`"${cmd}" exited ${exit!.code ?? exit!.signal}\nstdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`);
  }
  return { stdout: p.stdout(), stderr: p.stderr() };
}

/** Starts a long-running command and resolves once `ready` holds; fails early with its output if it exits. */
export async function startShellUntil(
  t: TestContextLike,
  cmd: string,
  ready: (p: Launched) => Promise<boolean> | boolean,
  env: NodeJS.ProcessEnv = docEnv(),
  timeoutMs = 30_000,
): Promise<Launched> {
  const p = startShell(t, cmd, env);
  try {
    await until(`"${cmd}" ready`, timeoutMs, async () => {
      if (!p.alive()) throw new GiveUp('exited');
      try {
        return await ready(p);
      } catch {
        return false;
      }
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}\nstdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`);
  }
  return p;
}

/**
 * Writes a snippet as a module file inside the clone (under node_modules/,
 * which git ignores) so that its imports resolve like a user's file in the
 * repo. TypeScript is transpiled first (no type check here).
 */
export function snippetFile(t: TestContextLike, code: string, lang: string): string {
  const base = join(REPO, 'node_modules', '.doc-snippets');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, 'snippet-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const js =
    lang === 'ts' || lang === 'typescript'
      ? ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
      : code;
  if (js !== code) writeFileSync(join(dir, 'snippet.mts'), code);
  const file = join(dir, 'snippet.mjs');
  writeFileSync(file, js);
  return file;
}

/**
 * Type-checks TypeScript files as a user's strict NodeNext project would
 * (imports resolve from where the files are); returns the diagnostics.
 */
export function typecheck(files: string[]): string[] {
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: ['node'],
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : '';
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
}

/** The base URL of a server whose /health answers, for readiness checks. */
export async function healthy(port: number): Promise<boolean> {
  const r = await fetch(`http://127.0.0.1:${port}/health`);
  return r.status === 200;
}
