import { assert } from '../util/assert.js';

/** Slots that change owner from one KN thread to another, as one handoff. */
export interface SlotMove {
  slots: number[];
  from: number;
  to: number;
}

function slotsByOwner(owners: Uint16Array): Map<number, number[]> {
  const byOwner = new Map<number, number[]>();
  for (let slot = 0; slot < owners.length; slot++) {
    const owner = owners[slot] as number;
    let list = byOwner.get(owner);
    if (list === undefined) byOwner.set(owner, (list = []));
    list.push(slot);
  }
  return byOwner;
}

/**
 * Adding a KN thread: it takes about 1/N of the slots, evenly from every current owner (each gives
 * the slots above its new fair share), so load stays balanced and only 1/N of the keys pause.
 */
export function planAddThread(owners: Uint16Array, newRank: number): SlotMove[] {
  return planAddThreads(owners, [newRank]);
}

/**
 * Adding several threads at once (a KN with T threads): every current owner gives the slots above
 * the new fair share, dealt round-robin to the new threads, so no slot moves twice and no new
 * thread gives slots to another.
 */
export function planAddThreads(owners: Uint16Array, newRanks: readonly number[]): SlotMove[] {
  const byOwner = slotsByOwner(owners);
  for (const rank of newRanks) assert(!byOwner.has(rank), 'the new threads own nothing yet');
  const fairShare = Math.floor(owners.length / (byOwner.size + newRanks.length));
  const moves = new Map<string, SlotMove>();
  let next = 0;
  for (const rank of [...byOwner.keys()].sort((a, b) => a - b)) {
    for (const slot of (byOwner.get(rank) as number[]).slice(fairShare)) {
      const to = newRanks[next++ % newRanks.length] as number;
      const id = `${rank}>${to}`;
      let move = moves.get(id);
      if (move === undefined) moves.set(id, (move = { slots: [], from: rank, to }));
      move.slots.push(slot);
    }
  }
  return [...moves.values()];
}

/** Removing a KN thread: its slots go to the survivors round-robin, one move per survivor. */
export function planRemoveThread(
  owners: Uint16Array,
  rank: number,
  survivors: readonly number[],
): SlotMove[] {
  assert(survivors.length > 0 && !survivors.includes(rank), 'someone else takes the slots');
  const slots = slotsByOwner(owners).get(rank) ?? [];
  const moves = survivors.map((to) => ({ slots: [] as number[], from: rank, to }));
  slots.forEach((slot, i) => (moves[i % moves.length] as SlotMove).slots.push(slot));
  return moves.filter((m) => m.slots.length > 0);
}
