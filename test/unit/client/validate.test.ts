import { describe, expect, it } from 'vitest';
import { keyBytes, valueBytes } from '../../../src/client/validate.js';
import { isDinomoError } from '../../../src/errors/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isDinomoError(err)) return err.code;
    throw err;
  }
  return 'none';
}

describe('edge validation', () => {
  it('accepts keys of 1 to 1024 bytes, as strings (UTF-8) or bytes', () => {
    expect(keyBytes('a').length).toBe(1);
    expect(keyBytes('é').length).toBe(2);
    expect(keyBytes(new Uint8Array(1024)).length).toBe(1024);
  });

  it('refuses empty, oversized and non-string keys with INVALID_KEY', () => {
    expect(codeOf(() => keyBytes(''))).toBe('INVALID_KEY');
    expect(codeOf(() => keyBytes('x'.repeat(1025)))).toBe('INVALID_KEY');
    expect(codeOf(() => keyBytes('é'.repeat(513)))).toBe('INVALID_KEY'); // 1026 bytes
    for (const bad of [42, null, undefined, {}, ['a'], true])
      expect(codeOf(() => keyBytes(bad))).toBe('INVALID_KEY');
  });

  it('accepts values up to 1 MiB and refuses larger or non-bytes values with INVALID_VALUE', () => {
    expect(valueBytes('').length).toBe(0);
    expect(valueBytes(new Uint8Array(1024 * 1024)).length).toBe(1024 * 1024);
    expect(codeOf(() => valueBytes(new Uint8Array(1024 * 1024 + 1)))).toBe('INVALID_VALUE');
    for (const bad of [1, null, undefined, { a: 1 }])
      expect(codeOf(() => valueBytes(bad))).toBe('INVALID_VALUE');
  });

  it('says what to do in the message', () => {
    try {
      keyBytes('');
    } catch (err) {
      expect(String(err)).toMatch(
        /INVALID_KEY: a key must not be empty \(Keys are strings or Uint8Arrays/,
      );
    }
  });
});

describe('connect', () => {
  it('validates the URL and says remote clients are not built yet', async () => {
    const { connect } = await import('../../../src/index.js');
    await expect(connect('nonsense')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(connect('http://127.0.0.1:1')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(connect('redis://127.0.0.1:6379')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED',
    });
  });
});
