import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Clock } from '../time/index.js';

/** A cluster process (dinomo dpm | monitor | kn) started by the supervisor, with its log. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** The JSON line the process printed when it was ready. */
  readonly ready: Record<string, unknown>;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  readonly exited: Promise<number | string>;
}

/**
 * Starts `node <cli> <args>` with its output appended to `logPath`, and resolves once it printed
 * its `{"ready":true,...}` line. Rejects (and kills the process) if it exits first or is not ready
 * within `timeoutMs`; the message ends with the last lines of its log.
 */
export function startProcess(
  name: string,
  cli: string,
  args: readonly string[],
  logPath: string,
  clock: Clock,
  timeoutMs: number,
): Promise<ManagedProcess> {
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const keep = (line: string): void => {
    log.write(`${line}\n`);
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  createInterface({ input: child.stderr }).on('line', keep);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      closeLog(log);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return new Promise<ManagedProcess>((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`${name} ${why}; its log ends:\n${tail.join('\n')}`));
    };
    const timer = clock.setTimer(timeoutMs * 1000, () =>
      fail(`was not ready within ${timeoutMs} ms`),
    );
    void exited.then((code) => {
      timer.cancel();
      fail(`exited (${code}) before it was ready`);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      const ready = settled ? null : parseReady(line);
      if (ready === null) return;
      settled = true;
      timer.cancel();
      resolve({ name, child, ready, exited });
    });
  });
}

function parseReady(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    return value.ready === true ? value : null;
  } catch {
    return null;
  }
}

function closeLog(log: WriteStream): void {
  log.end();
}

/** Sends SIGTERM and waits for the exit; SIGKILL after `graceMs`. */
export async function stopProcess(p: ManagedProcess, clock: Clock, graceMs: number): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = clock.setTimer(graceMs * 1000, () => p.child.kill('SIGKILL'));
  await p.exited;
  timer.cancel();
}
