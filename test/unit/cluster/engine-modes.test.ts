import { describe, expect, it } from 'vitest';
import { knThreadSettings } from '../../../src/cluster/kn-settings.js';
import { MonitorServer } from '../../../src/cluster/monitor-server.js';
import { fillOptions } from '../../../src/config/index.js';
import { formatRegion, openRegion } from '../../../src/dpm/index.js';
import { LocalFabric } from '../../../src/fabric/index.js';
import { ChainWalker } from '../../../src/kn/clover-chain.js';
import { knThreadOptions, modeDeps } from '../../../src/kn/kn-thread-runtime.js';
import { hashKey } from '../../../src/util/hash.js';

const MiB = 2 ** 20;

/** A small formatted region and its fabric, enough to build a chain walker on. */
function regionFabric(): {
  fabric: LocalFabric;
  geometry: ReturnType<typeof openRegion>['geometry'];
} {
  const region = new SharedArrayBuffer(16 * MiB);
  formatRegion(region, { blockBytes: 2 * MiB, chainCount: 2 });
  return { fabric: new LocalFabric(region), geometry: openRegion(region).geometry };
}

/** Inserts one key with a value into `deps.dac` and returns what the DAC kept. */
function cacheOne(deps: ReturnType<typeof modeDeps>): { values: number; shortcuts: number } {
  const key = new TextEncoder().encode('k');
  deps.dac.insert(key, hashKey(key), new Uint8Array(16), {
    entryOffset: 4096,
    entryBytes: 64,
    generation: 1,
  });
  return deps.dac.stats();
}

describe('KN thread runtime: the engine mode reaches the thread', () => {
  it('passes every mode from the cluster options to the KnThread options', () => {
    for (const mode of ['dinomo', 'clover', 'dinomo-n'] as const) {
      const settings = knThreadSettings(fillOptions({ mode }));
      expect(settings.mode).toBe(mode);
      expect(knThreadOptions(settings, 3, 7)).toMatchObject({ mode, rank: 3, epoch: 7 });
    }
  });

  it('gives a clover thread a chain walker and a shortcuts-only DAC, the others neither', () => {
    const { fabric, geometry } = regionFabric();
    const clover = modeDeps(knThreadSettings(fillOptions({ mode: 'clover' })), fabric, geometry);
    expect(clover.chain).toBeInstanceOf(ChainWalker);
    expect(cacheOne(clover)).toMatchObject({ values: 0, shortcuts: 1 });
    for (const mode of ['dinomo', 'dinomo-n'] as const) {
      const deps = modeDeps(knThreadSettings(fillOptions({ mode })), fabric, geometry);
      expect(deps.chain).toBeUndefined();
      expect(cacheOne(deps)).toMatchObject({ values: 1, shortcuts: 0 });
    }
  });
});

describe('multi-process cluster and the baselines', () => {
  it('refuses clover and dinomo-n with NOT_SUPPORTED before connecting to anything', async () => {
    for (const mode of ['clover', 'dinomo-n'] as const) {
      const started = MonitorServer.start({
        // Nothing listens here: the refusal must come before any connection attempt.
        dpm: { host: '127.0.0.1', port: 1 },
        secret: 'unused',
        options: fillOptions({ mode }),
      });
      await expect(started).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
      await expect(started).rejects.toThrow(/runs only in the embedded cluster/);
    }
  });
});
