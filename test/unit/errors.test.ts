import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DinomoError,
  ErrorCodes,
  errorCodeFromWire,
  errorCodeList,
  errorCodeToWire,
  fromWireError,
  isDinomoError,
  toWireError,
} from '../../src/errors/index.js';

describe('error table', () => {
  it('is documented: docs/errors.md lists every code', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const code of errorCodeList) expect(doc).toContain(`\`${code}\``);
  });

  it('crosses threads as data and comes back as a DinomoError with the same code', () => {
    const original = new DinomoError('OVERLOADED', 'queue full');
    const back = fromWireError(structuredClone(toWireError(original)));
    expect(isDinomoError(back)).toBe(true);
    expect(back.code).toBe('OVERLOADED');
    expect(back.retriable).toBe(true);
    expect(back.origin).toBe('remote');
    expect(toWireError(new Error('boom')).code).toBe('INTERNAL');
  });

  it('maps codes to small wire numbers and back', () => {
    for (const code of Object.keys(ErrorCodes)) {
      expect(errorCodeFromWire(errorCodeToWire(code as keyof typeof ErrorCodes))).toBe(code);
    }
    expect(errorCodeFromWire(9999)).toBe('INTERNAL');
  });
});
