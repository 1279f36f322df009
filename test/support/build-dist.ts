import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Vitest's global setup: brings dist/ up to date with src/ before any test starts, so the tests
 * that start `bin/nightshift.js` run the compiled CLI a user gets, built from the sources under
 * test (the bin would otherwise run the sources through tsx, and say so on stderr). Unit tests
 * import the .ts sources directly and do not need it. Costs nothing when dist/ is current.
 */
export default function setup(): void {
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("../../scripts/build.mjs", import.meta.url)), "--if-stale"],
    { stdio: "inherit" },
  );
}
