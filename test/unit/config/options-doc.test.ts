import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultOptions } from '../../../src/config/index.js';

describe('docs/options.md', () => {
  it('lists every option in its table', () => {
    const doc = readFileSync(new URL('../../../docs/options.md', import.meta.url), 'utf8');
    const rows = new Set([...doc.matchAll(/^\|\s*`(\w+)`\s*\|/gm)].map((m) => m[1]));
    for (const name of [...Object.keys(defaultOptions), 'dataDir']) expect(rows).toContain(name);
  });
});
