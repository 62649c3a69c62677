/**
 * Fencing in a shared region (DESIGN.md section 8, "KN failure"). Every KN thread rank has a u32
 * fence word in the cluster metadata. It holds the lowest incarnation of that rank that may still
 * write; an endpoint opened for incarnation `i` may write while the word equals `i`. Fencing a rank
 * raises the word to `i + 1`: the old incarnation's writes fail from then on, and a restart of the
 * same rank opens its endpoint with the new value.
 *
 * In one address space a check followed by a store is not atomic: a writer could pass the check,
 * the DPM could fence and merge, and the store could land afterwards. So a writer marks the word busy
 * (bit 31, by compare-and-swap from exactly its incarnation) for the length of one operation, and the
 * fencer spins until the word is not busy before raising it. Operations are a memory copy long, so
 * the spin is short. On RDMA the same guarantee comes from revoking the memory registration.
 *
 *    31  30 ........................................ 0
 *   +----+-------------------------------------------+
 *   |busy| lowest incarnation allowed to write       |
 *   +----+-------------------------------------------+
 */
export const fenceBusyBit = 0x8000_0000 | 0;
const incarnationMask = 0x7fff_ffff;

/** Marks the word busy for one write by `incarnation`; false when that incarnation is fenced. */
export function enterFenced(words: Int32Array, index: number, incarnation: number): boolean {
  for (;;) {
    const seen = Atomics.compareExchange(words, index, incarnation, incarnation | fenceBusyBit);
    if (seen === incarnation) return true;
    // Another operation of the same incarnation cannot be in flight (one thread per rank), so a
    // busy word here belongs to nobody alive; anything but our incarnation means fenced.
    if ((seen & incarnationMask) !== incarnation) return false;
    Atomics.compareExchange(words, index, seen, incarnation);
  }
}

export function leaveFenced(words: Int32Array, index: number, incarnation: number): void {
  Atomics.store(words, index, incarnation);
}

/** The incarnation a rank's endpoint opens with (the word without the busy bit). */
export function currentIncarnation(words: Int32Array, index: number): number {
  return Atomics.load(words, index) & incarnationMask;
}

/**
 * Fences incarnation `failed` of the rank (and every earlier one) and returns the incarnation a
 * restart gets. Idempotent: fencing the same incarnation again changes nothing, so a repeated
 * failover request cannot fence the restart that followed the first one. Waits out a write in
 * flight, so no write of a fenced incarnation lands after this returns.
 */
export function fenceRank(words: Int32Array, index: number, failed: number): number {
  for (;;) {
    const seen = Atomics.load(words, index);
    if ((seen & fenceBusyBit) !== 0) continue;
    const current = seen & incarnationMask;
    if (current > failed) return current;
    const next = (failed + 1) & incarnationMask;
    if (Atomics.compareExchange(words, index, seen, next) === seen) return next;
  }
}
