// Whether dist/ holds a complete build of src/ as it is now. Shared by bin/nightshift.js and
// scripts/build.mjs; plain JavaScript with no dependencies, so it costs the CLI a few milliseconds.
import { readdirSync, statSync } from "node:fs";
import path from "node:path";

/** The build writes this file last, with the time the build started. */
export const STAMP = "build.json";

/**
 * Undefined when `<root>/dist` is a complete build and no file under `<root>/src` changed after it
 * started; otherwise why not, in words. An installed package ships dist/ without src/.
 */
export function whyNotBuilt(root) {
  const built = mtime(path.join(root, "dist", STAMP));
  if (built === undefined) return "dist/ is not built";
  const changed = newerThan(path.join(root, "src"), built);
  return changed && `${path.relative(root, changed)} changed after dist/ was built`;
}

function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The first file under `dir` modified after `time`, if any (nothing when `dir` is absent). */
function newerThan(dir, time) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = newerThan(file, time);
      if (found) return found;
    } else if ((mtime(file) ?? 0) > time) {
      return file;
    }
  }
  return undefined;
}
