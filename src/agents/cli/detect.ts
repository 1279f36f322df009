import { execFile } from "node:child_process";
import { access, constants, mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { NightshiftError } from "../../errors/index.ts";
import { obj, str } from "./json-lines.ts";

/** How to find one agent CLI: its npm package and the command that package installs. */
export interface AgentCliSpec {
  /** The [agent] driver name. */
  driver: string;
  /** What people call it. */
  displayName: string;
  /** The npm package that installs it. */
  packageName: string;
  /** The command its package puts on PATH. */
  bin: string;
}

export interface LocatedCli {
  file: string;
  /** What `<cli> --version` printed (first line). */
  version: string;
  /** Where it was found: the configured path, an npm package, or PATH. */
  source: "configured" | "package" | "path";
}

export interface LocateOptions {
  /** An explicit program path from the configuration; nothing else is tried when given. */
  path?: string;
  /** Folders whose node_modules may hold the package (the factory's repository). */
  searchFrom?: string[];
}

const VERSION_TIMEOUT_MS = 30_000;
const cache = new Map<string, Promise<LocatedCli>>();

/**
 * Finds an agent CLI and proves it starts (`--version`). Throws `agent_cli_missing` naming the npm
 * package to install, or `agent_cli_broken` when it is there but does not run. Cached per process:
 * detection runs once, not once per run.
 */
export function locateCli(spec: AgentCliSpec, options: LocateOptions = {}): Promise<LocatedCli> {
  const key = JSON.stringify([spec.packageName, options.path, options.searchFrom]);
  let found = cache.get(key);
  if (!found) {
    found = locate(spec, options);
    cache.set(key, found);
    // A failure is not cached: the user may install the package while the line keeps running.
    found.catch(() => cache.delete(key));
  }
  return found;
}

async function locate(spec: AgentCliSpec, options: LocateOptions): Promise<LocatedCli> {
  if (options.path) {
    const file = path.resolve(options.path);
    if (!(await isExecutable(file))) {
      throw new NightshiftError(
        "agent_cli_missing",
        `${spec.displayName} is not at the configured path ${file}`,
        { hint: `fix [agent.${configKey(spec)}] path, or remove it and ${installHint(spec)}` },
      );
    }
    return { file, version: await versionOf(spec, file), source: "configured" };
  }
  const fromPackage = await fromNodeModules(spec, options.searchFrom ?? []);
  if (fromPackage)
    return { file: fromPackage, version: await versionOf(spec, fromPackage), source: "package" };
  const onPath = await fromPath(spec.bin);
  if (onPath) return { file: onPath, version: await versionOf(spec, onPath), source: "path" };
  throw new NightshiftError(
    "agent_cli_missing",
    `${spec.displayName} is not installed: no npm package ${spec.packageName} and no "${spec.bin}" command on PATH`,
    { hint: installHint(spec), details: { driver: spec.driver, package: spec.packageName } },
  );
}

export function installHint(spec: AgentCliSpec): string {
  return `install it with \`npm install -E --save-dev ${spec.packageName}\` in the factory's repository (or \`npm install -g ${spec.packageName}\`)`;
}

function configKey(spec: AgentCliSpec): string {
  return spec.driver.replaceAll("-", "_");
}

async function fromNodeModules(
  spec: AgentCliSpec,
  searchFrom: string[],
): Promise<string | undefined> {
  // nightshift's own dependencies first, then the factory's.
  const bases = [
    import.meta.url,
    ...searchFrom.map((dir) => path.join(path.resolve(dir), "noop.js")),
  ];
  for (const base of bases) {
    let manifestPath: string;
    try {
      manifestPath = createRequire(base).resolve(`${spec.packageName}/package.json`);
    } catch {
      continue;
    }
    const manifest = obj(await readJson(manifestPath));
    const bin = manifest?.bin;
    const relative = str(bin) ?? str(obj(bin)?.[spec.bin]);
    if (!relative) continue;
    const file = path.resolve(path.dirname(manifestPath), relative);
    if (await isExecutable(file)) return file;
  }
  return undefined;
}

async function fromPath(bin: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, bin);
    if (await isExecutable(file)) return file;
  }
  return undefined;
}

async function versionOf(spec: AgentCliSpec, file: string): Promise<string> {
  // A throwaway HOME: asking for a version must not touch the user's agent settings.
  const home = await mkdtemp(path.join(os.tmpdir(), "nightshift-detect-"));
  try {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        file,
        ["--version"],
        {
          // XDG too: OpenCode takes its config folder from there, not from HOME.
          env: {
            PATH: process.env.PATH ?? "",
            HOME: home,
            TMPDIR: home,
            XDG_CONFIG_HOME: home,
            XDG_DATA_HOME: home,
            XDG_CACHE_HOME: home,
            XDG_STATE_HOME: home,
            NO_COLOR: "1",
            // Gemini CLI otherwise starts itself a second time (for a larger heap) just to print
            // its version: twice the time, which a busy host stretched past the check's limit.
            GEMINI_CLI_NO_RELAUNCH: "true",
          },
          timeout: versionTimeoutMs(),
          maxBuffer: 1024 * 1024,
        },
        (error, stdout, stderr) => {
          if (error?.killed) reject(new SlowStart());
          else if (error) reject(new Error(`${error.message}\n${stderr}`.trim()));
          else resolve(stdout);
        },
      );
    });
    const version = output.trim().split("\n")[0]?.trim();
    if (!version) throw new Error("it printed nothing");
    return version;
  } catch (error) {
    if (error instanceof SlowStart) {
      throw new NightshiftError(
        "agent_cli_slow",
        `${spec.displayName} at ${file} did not answer \`${spec.bin} --version\` within ${versionTimeoutMs() / 1000} s: it is installed, but starting it is slow here (a busy machine, a cold disk cache)`,
        {
          hint: `run \`${file} --version\` once to see how long it takes, then retry; NIGHTSHIFT_CLI_CHECK_TIMEOUT_MS raises the limit (now ${versionTimeoutMs()} ms)`,
        },
      );
    }
    throw new NightshiftError(
      "agent_cli_broken",
      `${spec.displayName} at ${file} does not run: \`${spec.bin} --version\` failed: ${(error as Error).message.slice(0, 500)}`,
      {
        hint: `reinstall it (${installHint(spec)}); its native binary comes as an optional npm dependency, so do not install with --omit=optional or --ignore-scripts`,
      },
    );
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

class SlowStart extends Error {}

/** How long `--version` may take; a busy machine can need more than the default. */
function versionTimeoutMs(): number {
  const configured = Number(process.env.NIGHTSHIFT_CLI_CHECK_TIMEOUT_MS);
  return Number.isFinite(configured) && configured > 0 ? configured : VERSION_TIMEOUT_MS;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch {
    return undefined;
  }
}
