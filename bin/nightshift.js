#!/usr/bin/env node
// Runs the compiled CLI in dist/, which `npm ci`, `npm install` and `npm pack` build through the
// package's `prepare` script (scripts/build.mjs). In a checkout whose src/ changed after that build,
// it runs the TypeScript sources through tsx instead and says so on stderr: that costs seconds of
// CPU per call rather than a tenth of one, but never runs code older than the sources.
import { fileURLToPath } from "node:url";
import { whyNotBuilt } from "./built.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const stale = whyNotBuilt(root);
let cli;
if (stale === undefined) {
  cli = await import("../dist/cli/main.js");
} else {
  process.stderr.write(
    `nightshift: ${stale}; running the TypeScript sources through tsx (slower). \`npm run build\` compiles them.\n`,
  );
  const { register } = await import("tsx/esm/api");
  register();
  cli = await import("../src/cli/main.ts");
}
await cli.main(process.argv);
