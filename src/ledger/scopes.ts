import picomatch from "picomatch";

/**
 * When two work orders' scopes overlap, so that running them at once would likely have both edit
 * the same files and collide in the merge queue.
 *
 * A scope is a list of paths relative to the repository: files ("src/a.ts"), folders ("src/lib/"
 * or "src/lib") or globs ("src/**\/*.ts"). Two paths overlap when one could name a file the other
 * also names, which here means: compared segment by segment up to the shorter one's length, every
 * pair of segments may be equal. So a folder overlaps everything under it, "src/*.ts" overlaps
 * "src/a.ts" but not "src/lib/" or "src/a.md". The rule errs towards overlap where it cannot tell
 * cheaply: a "**" segment overlaps anything from there on, and two glob segments are taken to
 * overlap. Holding back an order a little too often costs only time; missing an overlap costs a
 * merge conflict and a retry.
 */
export type UnscopedRule = "parallel" | "exclusive";

const GLOB = /[*?[\]{}()!+@]/;

function segmentsOf(path: string): string[] {
  return path
    .trim()
    .replace(/^\.\//, "")
    .split("/")
    .filter((s) => s !== "" && s !== ".");
}

function segmentsMayMeet(a: string, b: string): boolean {
  const globA = GLOB.test(a);
  const globB = GLOB.test(b);
  if (!globA && !globB) return a === b;
  if (globA && globB) return true;
  return globA ? picomatch.isMatch(b, a, { dot: true }) : picomatch.isMatch(a, b, { dot: true });
}

/** Whether two scope paths (file, folder or glob) may name a common file. */
export function pathsOverlap(a: string, b: string): boolean {
  const sa = segmentsOf(a);
  const sb = segmentsOf(b);
  // The repository root ("", ".", "/") is a folder over everything.
  if (sa.length === 0 || sb.length === 0) return true;
  const n = Math.min(sa.length, sb.length);
  for (let i = 0; i < n; i++) {
    const x = sa[i] as string;
    const y = sb[i] as string;
    if (x === "**" || y === "**") return true;
    if (!segmentsMayMeet(x, y)) return false;
  }
  return true;
}

/**
 * Whether two orders' scopes collide. An empty scope means the order may touch anything: with
 * "parallel" it collides with nothing (scopes then only separate orders that both declare one),
 * with "exclusive" it collides with every other order.
 */
export function scopesCollide(
  a: readonly string[],
  b: readonly string[],
  unscoped: UnscopedRule,
): boolean {
  if (a.length === 0 || b.length === 0) return unscoped === "exclusive";
  return a.some((x) => b.some((y) => pathsOverlap(x, y)));
}
