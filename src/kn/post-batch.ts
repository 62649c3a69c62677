import type { MessagePort, Worker } from 'node:worker_threads';

/**
 * Batches at least this large are transferred to the other thread; smaller ones are copied, which is
 * cheaper for small buffers (feasibility-node20.md, section c). Batches are exact-size copies made by
 * BatchWriter.take, so transferring one never detaches a buffer that is still in use.
 */
export const transferBytesMin = 16 * 1024;

export function postBatch(target: MessagePort | Worker, batch: Uint8Array): void {
  target.postMessage(batch, batch.length >= transferBytesMin ? [batch.buffer as ArrayBuffer] : []);
}
