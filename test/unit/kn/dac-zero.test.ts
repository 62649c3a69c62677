import { expect, it } from 'vitest';
import { Dac, DacHit } from '../../../src/kn/dac.js';

it('a zero budget is a valid "no cache" setting: nothing is cached, nothing is charged', () => {
  const dac = new Dac({ capacityBytes: 0 });
  const key = Buffer.from('k');
  dac.insert(key, 1, Buffer.from('v'), { entryOffset: 64, entryBytes: 40, generation: 1 });
  expect(dac.lookup(key, 1)).toBe(DacHit.miss);
  expect(dac.stats()).toMatchObject({ bytesUsed: 0, values: 0, shortcuts: 0 });
  dac.checkInvariants();
});
