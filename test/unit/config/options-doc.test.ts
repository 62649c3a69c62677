import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultOptions } from '../../../src/config/index.js';

describe('docs/options.md', () => {
  it('lists every option', () => {
    const doc = readFileSync(new URL('../../../docs/options.md', import.meta.url), 'utf8');
    for (const name of [...Object.keys(defaultOptions), 'dataDir'])
      expect(doc).toContain(`| \`${name}\` |`);
  });
});
