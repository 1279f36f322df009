#!/usr/bin/env node
// Compiles src/ to dist/ (the `build` and `prepare` scripts, so `npm ci`, `npm install` and
// `npm pack` run it). Type errors do not stop it: `npm run typecheck` reports those, and a build
// that refused to emit would make `npm ci` fail on a work in progress. Files that are not
// TypeScript (SQL migrations, the price table, the sandbox gateway relay) are copied beside the code
// that reads them. The new build is made in a scratch folder and swapped in whole, and its stamp
// (bin/built.js) is written last, so bin/nightshift.js never runs a half-written dist/. The
// console's web UI (src/console/web, React) is built by Vite into dist/console/web, so the npm
// tarball carries it and an installed nightshift needs neither Vite nor React.
//
//   node scripts/build.mjs             build
//   node scripts/build.mjs --if-stale  build only when dist/ is older than src/
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { STAMP, whyNotBuilt } from "../bin/built.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = path.join(root, "dist");
const CONSOLE_UI = path.join(root, "src", "console", "web");

if (process.argv.includes("--if-stale") && whyNotBuilt(root) === undefined) process.exit(0);

let tsc;
try {
  const manifest = createRequire(import.meta.url).resolve("typescript/package.json");
  tsc = path.join(path.dirname(manifest), "bin", "tsc");
} catch {
  // An install without devDependencies (npm ci --omit=dev in a checkout): the bin runs the sources.
  console.error(
    "nightshift build: typescript is not installed; bin/nightshift.js will run src/ through tsx",
  );
  process.exit(0);
}

const started = new Date();
const scratch = `${dist}.tmp-${process.pid}`;
rmSync(scratch, { recursive: true, force: true });
try {
  try {
    execFileSync(
      process.execPath,
      [tsc, "-p", path.join(root, "tsconfig.build.json"), "--noCheck", "--outDir", scratch],
      { stdio: "inherit" },
    );
  } catch (error) {
    // With --noCheck tsc fails only when it cannot emit (a syntax error, a broken tsconfig).
    console.error(`nightshift build: tsc failed (exit ${error.status ?? error.signal})`);
    // process.exit skips the finally below: a half-written scratch folder would be left behind.
    rmSync(scratch, { recursive: true, force: true });
    process.exit(1);
  }
  copyAssets(path.join(root, "src"), scratch);
  await buildConsoleUi(path.join(scratch, "console", "web"));
  const stamp = path.join(scratch, STAMP);
  writeFileSync(stamp, `${JSON.stringify({ started: started.toISOString() })}\n`);
  // Any source saved while tsc ran is newer than this, so the next call sees the build as stale.
  utimesSync(stamp, started, started);
  const old = `${dist}.old-${process.pid}`;
  try {
    renameSync(dist, old);
  } catch (error) {
    if (error.code !== "ENOENT") throw error;
  }
  renameSync(scratch, dist);
  rmSync(old, { recursive: true, force: true });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

async function buildConsoleUi(outDir) {
  const [{ build }, { default: react }] = await Promise.all([
    import("vite"),
    import("@vitejs/plugin-react"),
  ]);
  try {
    await build({
      root: CONSOLE_UI,
      base: "./",
      configFile: false,
      logLevel: "warn",
      plugins: [react()],
      build: { outDir, emptyOutDir: true, chunkSizeWarningLimit: 1024 },
    });
  } catch (error) {
    console.error(`nightshift build: the console's UI did not build: ${error.message}`);
    process.exit(1);
  }
}

function copyAssets(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    // The UI's sources are Vite's input, not files the server reads.
    if (source === CONSOLE_UI) continue;
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      copyAssets(source, target);
    } else if (!entry.name.endsWith(".ts")) {
      mkdirSync(to, { recursive: true });
      copyFileSync(source, target);
    }
  }
}
