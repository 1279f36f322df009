import { changedFiles, gitIn, outcome, rangeOf } from "./diff.ts";
import type { Gate } from "./types.ts";

const SECTIONS = [
  "dependencies",
  "devDependencies",
  "optionalDependencies",
  "peerDependencies",
] as const;

export interface DependencyGateOptions {
  /** Package names a person already approved. */
  allow: string[];
}

/**
 * New packages are supply-chain decisions a person makes: the gate lists every package a change
 * adds to a package.json (any of them, in any workspace) that is not on the allow list.
 */
export function createDependencyGate(options: DependencyGateOptions): Gate {
  const allowed = new Set(options.allow);
  return {
    name: "dependencies",
    scope: "change",
    async run(ctx) {
      const started = performance.now();
      const { base, commit } = rangeOf("dependencies", ctx);
      const manifests = (await changedFiles(ctx.workspacePath, base, commit)).filter(
        (f) => (f.path === "package.json" || f.path.endsWith("/package.json")) && f.status !== "D",
      );
      const added: string[] = [];
      const unreadable: string[] = [];
      for (const file of manifests) {
        const before = await readJson(ctx.workspacePath, base, file.path);
        const after = await readJson(ctx.workspacePath, commit, file.path);
        if (after === undefined) {
          unreadable.push(file.path);
          continue;
        }
        for (const section of SECTIONS) {
          const now = after[section] ?? {};
          const then = before?.[section] ?? {};
          for (const [name, range] of Object.entries(now)) {
            if (name in then || allowed.has(name)) continue;
            added.push(`${name}@${String(range)} (${section} in ${file.path})`);
          }
        }
      }
      if (added.length === 0 && unreadable.length === 0) {
        return outcome("dependencies", started, true, "dependencies: no new packages");
      }
      const lines = [
        ...added.map((a) => `- new package for review: ${a}`),
        ...unreadable.map((p) => `- ${p} is not valid JSON`),
      ];
      return outcome(
        "dependencies",
        started,
        false,
        `dependency changes need a person's review:\n${lines.join("\n")}\nDo the work without new packages, or ask for them to be allowed ([gates.dependencies] allow).`,
      );
    },
  };
}

type Manifest = Partial<Record<(typeof SECTIONS)[number], Record<string, unknown>>>;

async function readJson(cwd: string, commit: string, path: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await gitIn(cwd, ["show", `${commit}:${path}`])) as Manifest;
  } catch {
    return undefined;
  }
}
