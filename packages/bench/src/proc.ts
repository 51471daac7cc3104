import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Every process the harness starts is registered here so that it can be
 * killed by PID on any exit path (normal end, error, Ctrl-C).
 */
const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Synchronous last-resort cleanup: SIGKILL each tracked child and its descendants by PID. */
export function killAllSync(): void {
  for (const c of children) {
    if (c.pid === undefined) continue;
    for (const pid of [...descendants(c.pid), c.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  children.clear();
}

let hooksInstalled = false;
export function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAllSync();
      process.exit(130);
    });
  }
}

/**
 * A free TCP port below the ephemeral range (so that no load-generator
 * source port can hold it), checked on 0.0.0.0 since some servers bind there.
 */
export async function freePort(): Promise<number> {
  const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = Math.max(2000, (lo ?? 32768) - 1);
  const bottom = Math.max(1024, top - 12_000);
  for (let i = 0; i < 100; i++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    if (await canListen(port)) return port;
  }
  throw new Error('no free port found');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** All descendants of pid (children, grandchildren, …), found by scanning /proc. */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // field 4 (ppid) follows the ")" that closes comm, which may itself contain spaces
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(e), Number(rest[1]));
    } catch {
      /* raced with exit */
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

const CLK_TCK = 100; // Linux USER_HZ; constant on every mainstream kernel config

/** CPU seconds (user+system) consumed by pid, or 0 if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 overall, i.e. 11 and 12 after ") "
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Resident set size in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Bytes a process passed to write-type syscalls (`wchar` of /proc/<pid>/io):
 * for a server that logs little, what it wrote to its sockets.
 */
export function writtenBytes(pid: number): number {
  try {
    const m = /^wchar:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function treeWrittenBytes(pid: number): number {
  return [pid, ...descendants(pid)].reduce((a, p) => a + writtenBytes(p), 0);
}

/** Sum over a process tree (a cluster master and its workers count together). */
export function treeCpuSeconds(pid: number): number {
  return [pid, ...descendants(pid)].reduce((a, p) => a + cpuSeconds(p), 0);
}
export function treeRssBytes(pid: number): number {
  return [pid, ...descendants(pid)].reduce((a, p) => a + rssBytes(p), 0);
}

/** Max open files for this process (soft limit), from /proc/self/limits. */
export function fdLimit(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /Max open files\s+(\d+)/.exec(limits);
    return m ? Number(m[1]) : 1024;
  } catch {
    return 1024;
  }
}

/** Lower bound of the ephemeral port range → ports one source address can use to one destination. */
export function ephemeralPortsPerSource(): number {
  const [lo, hi] = ephemeralPortRange();
  return hi - lo + 1;
}

/** The kernel's ephemeral port range (ip_local_port_range; Linux's default when unreadable). */
export function ephemeralPortRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return [lo!, hi!];
  } catch {
    return [32768, 60999];
  }
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Last few KB of stdout+stderr, for error messages. */
  tail(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

export function spawnTracked(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Spawned {
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env }));
  let buf = '';
  let done = false;
  const onData = (d: Buffer): void => {
    buf = (buf + d.toString()).slice(-4096);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.once('exit', () => {
    done = true;
  });
  if (child.pid === undefined) throw new Error(`failed to spawn ${cmd}`);
  const pid = child.pid;
  return {
    child,
    pid,
    tail: () => buf,
    exited: () => done,
    stop: () => stopProcess(child),
  };
}

/** SIGTERM, then SIGKILL after a grace period; descendants are killed by PID too. */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const pid = child.pid;
  const kids = descendants(pid);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const t = setTimeout(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await exited;
  clearTimeout(t);
  for (const k of kids) {
    try {
      process.kill(k, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** utime+stime+cutime+cstime: a process's CPU including its reaped children. */
function cpuWithChildren(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU seconds used by this harness: itself, every process it started, and their reaped children. */
export function harnessCpuSeconds(): number {
  return [process.pid, ...descendants(process.pid)].reduce((a, p) => a + cpuWithChildren(p), 0);
}

/** CPU seconds the whole machine was busy (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - f[3]! - f[4]!) / CLK_TCK;
  } catch {
    return 0;
  }
}
