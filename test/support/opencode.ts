import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { locateCli, openCodeSpec } from "../../src/agents/index.ts";

/**
 * The OpenCode the suite tests. opencode-ai cannot be a devDependency: the npm registry this
 * project installs from lacks 9 of its 11 platform binaries, so `npm ci` refuses any lockfile
 * that lists it (docs/agents.md). The suite installs it itself instead, pinned, outside the
 * lockfile: `npm install` fetches only the current platform's optional binary.
 */
export const OPENCODE_VERSION = "1.18.33";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Under node_modules: ignored by git, gone with a clean install, invisible to `npm ls`. */
export const OPENCODE_PREFIX = path.join(
  REPO,
  "node_modules",
  ".cache",
  "nightshift-agents",
  "opencode",
);
/** Long enough for a cold download of the package and its ~50 MB native binary. */
export const OPENCODE_INSTALL_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * The path of an `opencode` that starts, for the driver's `path` option: the repository's own
 * opencode-ai when it resolves (someone installed it), else the pinned version under
 * OPENCODE_PREFIX, installed there first when missing, a different version, or broken.
 */
export async function ensureOpenCode(): Promise<string> {
  const own = binOf(resolveManifest(REPO));
  if (own) return own;
  const manifest = path.join(OPENCODE_PREFIX, "node_modules", "opencode-ai", "package.json");
  const cached = versionOf(manifest) === OPENCODE_VERSION ? binOf(manifest) : undefined;
  if (cached && (await starts(cached))) return cached;
  await rm(OPENCODE_PREFIX, { recursive: true, force: true });
  await promisify(execFile)(
    "npm",
    [
      "install",
      "--no-save",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      "--prefix",
      OPENCODE_PREFIX,
      `opencode-ai@${OPENCODE_VERSION}`,
    ],
    { cwd: REPO, timeout: OPENCODE_INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
  ).catch((error: Error & { stderr?: string }) => {
    throw new Error(
      `could not install opencode-ai@${OPENCODE_VERSION} for the OpenCode tests: ${error.message}\n${error.stderr ?? ""}`,
    );
  });
  const installed = binOf(manifest);
  if (!installed) throw new Error(`npm installed no opencode program under ${OPENCODE_PREFIX}`);
  return installed;
}

function resolveManifest(from: string): string | undefined {
  try {
    return createRequire(path.join(from, "noop.js")).resolve("opencode-ai/package.json");
  } catch {
    return undefined;
  }
}

function versionOf(manifest: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(manifest, "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The `opencode` program a package.json declares, if it is there. */
function binOf(manifest: string | undefined): string | undefined {
  if (!manifest || !existsSync(manifest)) return undefined;
  const { bin } = JSON.parse(readFileSync(manifest, "utf8")) as {
    bin?: string | Record<string, string>;
  };
  const relative = typeof bin === "string" ? bin : bin?.opencode;
  if (!relative) return undefined;
  const file = path.resolve(path.dirname(manifest), relative);
  return existsSync(file) ? file : undefined;
}

/** A half-finished or interrupted install is reinstalled rather than trusted. */
async function starts(file: string): Promise<boolean> {
  try {
    await locateCli(openCodeSpec, { path: file });
    return true;
  } catch {
    return false;
  }
}
