import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/program.js';
import { fabricAvailable } from '../../src/util/native-addon.js';

const skipWhy = fabricAvailable()
  ? ''
  : ' (SKIPPED: the fabric addon is not built; it needs `apt-get install -y libfabric-dev`, then `npm run build:native`)';

if (skipWhy !== '') console.warn(`test/native/fabric-bench.test.ts${skipWhy}`);

function capture(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (text: string) => (out += text) },
      stderr: { write: (text: string) => (err += text) },
      stderrIsTty: false,
      loadCluster: () => Promise.reject(new Error('no cluster in this test')),
    },
    out: () => out,
    err: () => err,
  };
}

describe('dinomo fabric-bench', () => {
  it('refuses an unknown provider as a usage error', async () => {
    const c = capture();
    expect(await runCli(['fabric-bench', '--providers', 'shm,verbs'], c.io)).toBe(2);
    expect(c.err()).toContain('--providers lists shm and tcp only (got "verbs")');
  });

  it.skipIf(skipWhy !== '')(
    `measures every operation kind over both providers${skipWhy}`,
    async () => {
      const c = capture();
      expect(await runCli(['fabric-bench', '--ops', '200', '--json'], c.io)).toBe(0);
      const results = JSON.parse(c.out()) as {
        provider: string;
        ops: { op: string; tsMedianUs: number; nativeOpsPerSec: number }[];
      }[];
      expect(results.map((r) => r.provider)).toEqual(['shm', 'tcp']);
      for (const r of results) {
        expect(r.ops.map((o) => o.op)).toEqual([
          'read 8 B',
          'write 8 B',
          'read 1 KiB',
          'write 1 KiB',
          'cas u64',
          'faa u64',
        ]);
        for (const o of r.ops) {
          expect(o.tsMedianUs).toBeGreaterThan(0);
          expect(o.nativeOpsPerSec).toBeGreaterThan(0);
        }
      }
    },
  );
});
