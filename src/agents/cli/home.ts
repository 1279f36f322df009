import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/** A run's private home: every place an agent CLI keeps config, sessions, caches and temp files. */
export interface PrivateHome {
  root: string;
  home: string;
  tmp: string;
  configHome: string;
  dataHome: string;
  cacheHome: string;
  stateHome: string;
  /** The variables that point a CLI (and everything it starts) at these folders. */
  env: Record<string, string>;
  remove(): Promise<void>;
}

/**
 * Makes a fresh home for one run under `parent`. The user's own ~/.claude, ~/.codex, ~/.config
 * never reach an agent (no host credentials, no settings that differ from machine to machine), and
 * nothing the agent stores outlives the run. TMPDIR is private too: Codex refuses to set up its
 * own sandbox helpers when its home lies under the system temp dir.
 */
export async function makePrivateHome(parent: string, label: string): Promise<PrivateHome> {
  await mkdir(parent, { recursive: true });
  const root = await mkdtemp(path.join(parent, `${label}-`));
  const home = path.join(root, "home");
  const tmp = path.join(root, "tmp");
  const configHome = path.join(home, ".config");
  const dataHome = path.join(home, ".local", "share");
  const cacheHome = path.join(home, ".cache");
  const stateHome = path.join(home, ".local", "state");
  for (const dir of [home, tmp, configHome, dataHome, cacheHome, stateHome]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  return {
    root,
    home,
    tmp,
    configHome,
    dataHome,
    cacheHome,
    stateHome,
    env: {
      HOME: home,
      TMPDIR: tmp,
      XDG_CONFIG_HOME: configHome,
      XDG_DATA_HOME: dataHome,
      XDG_CACHE_HOME: cacheHome,
      XDG_STATE_HOME: stateHome,
    },
    remove: () => rm(root, { recursive: true, force: true, maxRetries: 3 }),
  };
}

/** Where private homes go unless the factory says otherwise. */
export function defaultHomesDir(): string {
  return path.join(os.tmpdir(), "nightshift-agent-homes");
}
