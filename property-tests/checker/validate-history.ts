import type { Operation } from './history.js';

/**
 * Shape checks for a history before anything relies on it. The checker's optimisations assume that
 * every field means what history.ts says it means (for example that a put value is unique per key),
 * so a harness bug that breaks one of these rules must surface as a clear error and never as a
 * wrong verdict.
 */
export function validateOperations(ops: readonly Operation[]): void {
  const ids = new Set<number>();
  // Put values must be unique per key, whatever the put's status: the checker identifies the source
  // of every read by its value, and a repeated value would make that identification ambiguous.
  const writerByKeyValue = new Map<string, Map<string, number>>();
  for (const op of ops) {
    const where = `operation #${String(op.id)}`;
    if (!Number.isSafeInteger(op.id))
      throw new TypeError(`operation id ${String(op.id)} must be a safe integer`);
    if (ids.has(op.id)) throw new Error(`${where}: id is not unique in the history`);
    ids.add(op.id);
    if (!Number.isSafeInteger(op.process))
      throw new TypeError(`${where}: process must be a safe integer`);
    if (op.f !== 'get' && op.f !== 'put' && op.f !== 'delete') {
      throw new TypeError(`${where}: f must be get, put or delete`);
    }
    if (op.status !== 'ok' && op.status !== 'fail' && op.status !== 'info') {
      throw new TypeError(`${where}: status must be ok, fail or info`);
    }
    if (typeof op.key !== 'string') throw new TypeError(`${where}: key must be a string`);
    if (!Number.isFinite(op.call) || !Number.isFinite(op.ret)) {
      throw new TypeError(`${where}: call and ret must be finite numbers`);
    }
    if (op.ret < op.call) throw new RangeError(`${where}: ret ${op.ret} is before call ${op.call}`);
    checkPayload(op, where);
    if (op.f === 'put' && op.value !== null) {
      let writers = writerByKeyValue.get(op.key);
      if (writers === undefined) {
        writers = new Map();
        writerByKeyValue.set(op.key, writers);
      }
      const previous = writers.get(op.value);
      if (previous !== undefined) {
        throw new Error(
          `duplicate put value ${JSON.stringify(op.value)} on key ${JSON.stringify(op.key)} ` +
            `(operations #${String(previous)} and #${String(op.id)}): put values must be unique per key`,
        );
      }
      writers.set(op.value, op.id);
    }
  }
}

function checkPayload(op: Operation, where: string): void {
  switch (op.f) {
    case 'put':
      if (typeof op.value !== 'string')
        throw new TypeError(`${where}: a put must carry a string value`);
      if (op.existed !== null) throw new TypeError(`${where}: existed must be null for a put`);
      return;
    case 'get':
      if (op.status === 'ok') {
        if (op.value !== null && typeof op.value !== 'string') {
          throw new TypeError(`${where}: an ok get must carry a string value or null`);
        }
      } else if (op.value !== null) {
        throw new TypeError(`${where}: a ${op.status} get read nothing, so its value must be null`);
      }
      if (op.existed !== null) throw new TypeError(`${where}: existed must be null for a get`);
      return;
    case 'delete':
      if (op.value !== null) throw new TypeError(`${where}: a delete must carry value null`);
      if (op.status === 'ok') {
        if (typeof op.existed !== 'boolean') {
          throw new TypeError(`${where}: an ok delete must say whether the key existed`);
        }
      } else if (op.existed !== null) {
        throw new TypeError(`${where}: existed must be null for a ${op.status} delete`);
      }
      return;
  }
}
