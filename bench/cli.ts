/**
 * CPU time of one CLI call, as a user's shell, a cron job or a console polling `status` pays it:
 * user + system seconds of the whole process (and its threads: V8 compiles on background threads),
 * measured by bash's `time`, the median of several calls. Printed beside `node -e 0` measured in the
 * same run (the machine is shared and noisy; the ratio travels better than the milliseconds), and
 * beside the same commands the way the CLI ran before there was a dist/ (sources through tsx).
 *
 *   npm run bench:cli                 (builds dist/ first if it is older than src/)
 *   CLI_BENCH_REPS=9 npm run bench:cli
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { whyNotBuilt } from "../bin/built.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = path.join(ROOT, "bin", "nightshift.js");
const REPS = Number(process.env.CLI_BENCH_REPS ?? 5);
const TARGET_MS: Record<string, number> = { "--help": 150, "status (cached)": 400 };

const stale = whyNotBuilt(ROOT);
if (stale) throw new Error(`${stale}: run \`npm run build\` first (npm run bench:cli does)`);

const env = { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", NIGHTSHIFT_DATABASE_URL: "" };

/** Median CPU milliseconds (user + system) of `argv` run `REPS` times; `before` runs untimed. */
function cpuMs(argv: string[], cwd: string, before?: () => void): number {
  const quoted = argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) {
    before?.();
    // bash's `time` reports the subshell's children: the command and all of its threads.
    const text = execFileSync(
      "bash",
      ["-c", `TIMEFORMAT='%3U %3S'; { time (${quoted} >/dev/null 2>&1) ; } 2>&1`],
      { cwd, env, encoding: "utf8" },
    );
    const [user, system] = text.trim().split(/\s+/).map(Number);
    samples.push(((user ?? Number.NaN) + (system ?? Number.NaN)) * 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? Number.NaN;
}

const work = await mkdtemp(path.join(tmpdir(), "nightshift-bench-cli-"));
try {
  const repo = path.join(work, "repo");
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@b.invalid", ...args], {
      cwd: repo,
      env,
    });
  execFileSync("mkdir", ["-p", repo]);
  git("init", "--quiet", "-b", "main");
  await writeFile(path.join(repo, "README.md"), "bench\n");
  git("add", "-A");
  git("commit", "--quiet", "-m", "initial");
  git("checkout", "--quiet", "--detach");
  const ns = (...args: string[]) =>
    execFileSync(process.execPath, [BIN, ...args], { cwd: repo, env });
  ns("init", "--provider", "simulator");
  for (const title of ["first order", "second order", "third order"]) ns("add", title);
  ns("status"); // leaves the status cache current

  // The CLI as it was started before dist/: bin/nightshift.js registering tsx and importing src/.
  const fromSources = path.join(work, "from-sources.mjs");
  await writeFile(
    fromSources,
    `import { register } from "tsx/esm/api";\nregister();\nconst { main } = await import(${JSON.stringify(path.join(ROOT, "src/cli/main.ts"))});\nawait main(process.argv);\n`,
  );
  // tsx/esm/api must resolve from the script's folder: link nightshift's node_modules there.
  execFileSync("ln", ["-s", path.join(ROOT, "node_modules"), path.join(work, "node_modules")]);

  const cache = path.join(repo, ".nightshift", "status-cache.json");
  const rows: [string, number][] = [];
  const measure = (name: string, argv: string[], before?: () => void) => {
    rows.push([name, cpuMs(argv, repo, before)]);
  };
  measure("node -e 0 (baseline)", [process.execPath, "-e", "0"]);
  measure("--help", [process.execPath, BIN, "--help"]);
  measure("status (cached)", [process.execPath, BIN, "status"]);
  measure("status (ledger changed)", [process.execPath, BIN, "status"], () =>
    execFileSync("rm", ["-f", cache]),
  );
  measure("--help, sources through tsx", [process.execPath, fromSources, "--help"]);
  measure("status, sources through tsx", [process.execPath, fromSources, "status"], () =>
    execFileSync("rm", ["-f", cache]),
  );

  const base = rows[0]![1];
  console.log(`nightshift CLI: CPU time per call (user + system), median of ${REPS}\n`);
  console.log("| command | CPU ms | x node -e 0 | target |");
  console.log("| --- | ---: | ---: | --- |");
  for (const [name, ms] of rows) {
    const target = TARGET_MS[name];
    const verdict = target === undefined ? "" : `< ${target} ms: ${ms < target ? "met" : "MISSED"}`;
    console.log(`| ${name} | ${ms.toFixed(0)} | ${(ms / base).toFixed(1)} | ${verdict} |`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
