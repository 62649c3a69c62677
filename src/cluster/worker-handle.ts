import { Worker } from 'node:worker_threads';
import { DinomoError } from '../errors/index.js';
import type { Clock } from '../time/index.js';

/**
 * A worker thread with the two things the cluster needs: waiting for a control message with a
 * deadline, and one notification when the worker dies unexpectedly.
 */
export class WorkerHandle {
  readonly worker: Worker;
  readonly name: string;
  private stopping = false;

  constructor(
    script: URL,
    name: string,
    workerData: unknown,
    transferList: readonly unknown[],
    onDeath: (name: string, why: string) => void,
  ) {
    this.name = name;
    this.worker = new Worker(script, { workerData, transferList: transferList as never, name });
    this.worker.on('error', (err) => {
      if (!this.stopping) onDeath(name, err.stack ?? err.message);
    });
    this.worker.on('exit', (code) => {
      if (!this.stopping) onDeath(name, `exited with code ${code}`);
    });
  }

  /** Resolves with the first message matching `accept`; fails after `timeoutMs` or if the worker dies. */
  waitFor<T>(
    accept: (message: unknown) => T | undefined,
    clock: Clock,
    timeoutMs: number,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cleanup = (): void => {
        timer.cancel();
        this.worker.off('message', onMessage);
        this.worker.off('exit', onExit);
      };
      const onMessage = (message: unknown): void => {
        const value = accept(message);
        if (value === undefined) return;
        cleanup();
        resolve(value);
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new DinomoError('WORKER_FAILED', `${this.name} exited with code ${code}`));
      };
      const timer = clock.setTimer(timeoutMs * 1000, () => {
        cleanup();
        reject(
          new DinomoError('WORKER_FAILED', `${this.name} did not answer within ${timeoutMs} ms`),
        );
      });
      this.worker.on('message', onMessage);
      this.worker.on('exit', onExit);
    });
  }

  async terminate(): Promise<void> {
    this.stopping = true;
    await this.worker.terminate();
  }

  markStopping(): void {
    this.stopping = true;
  }
}
