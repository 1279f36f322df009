import { createHash } from "node:crypto";

/**
 * Uniform in [0, 1) from a seed and some labels. Hashing instead of a stateful PRNG makes each draw
 * depend only on what it is about (a request number, a conversation), not on the order in which
 * concurrent requests happen to arrive.
 */
export function seededDraw(seed: number, ...labels: (string | number)[]): number {
  const digest = createHash("sha256")
    .update([seed, ...labels].join("\u0000"))
    .digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * Picks one of `rates`' keys with a single draw: each key takes a slice of [0, 1) as wide as its rate,
 * in the order given, so every rate is the exact share it names. Undefined when `u` falls past them.
 */
export function pickBySlices<K extends string>(
  u: number,
  order: readonly K[],
  rates: Partial<Record<K, number>>,
): K | undefined {
  let edge = 0;
  for (const key of order) {
    edge += rates[key] ?? 0;
    if (u < edge) return key;
  }
  return undefined;
}

/** Checks that each rate is in [0, 1] and that together they do not exceed 1; returns a problem or null. */
export function ratesProblem(rates: Readonly<Record<string, number | undefined>>): string | null {
  let sum = 0;
  for (const [name, value] of Object.entries(rates)) {
    if (value === undefined) continue;
    if (!(value >= 0 && value <= 1)) return `${name} must be between 0 and 1, got ${value}`;
    sum += value;
  }
  return sum > 1 + 1e-9 ? `the rates add up to ${sum}; together they must not exceed 1` : null;
}
