import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from './run-scenario.js';
import type { Regression } from './suite.js';

const dir = join(import.meta.dirname, '..', 'regressions');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

/**
 * Shrunk failing scenarios, replayed in the engine mode they were found in (DINOMO unless the file
 * says `mode`). One found in the real system must pass now (its bug is fixed); one found with a
 * mutant must still fail under that mutant (the suite still kills it).
 */
describe('regression scenarios', () => {
  it('has stored scenarios', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  for (const file of files) {
    it(file, async () => {
      const regression = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Regression;
      const mutated = Object.keys(regression.mutants).length > 0;
      const mode = regression.mode === undefined ? {} : { mode: regression.mode };
      const fixed = await runScenario(regression.scenario, mode);
      expect(fixed.failure).toBeNull();
      if (mutated) {
        const broken = await runScenario(regression.scenario, {
          ...mode,
          mutants: regression.mutants,
        });
        expect(broken.ok).toBe(false);
      }
    });
  }
});
