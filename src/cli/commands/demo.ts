import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { configTemplate } from "../../config/index.ts";
import { NightshiftError } from "../../errors/index.ts";
import { timeSpent } from "../../ledger/index.ts";
import {
  demoOrders,
  demoProjectFiles,
  demoTestCommand,
  resolveTsxLoader,
} from "../../sim/index.ts";
import { buildLine, openFactory } from "../factory.ts";
import { DEMO_MARKER } from "../models.ts";
import { formatProgress, formatTimeSpent, formatTotals } from "../output.ts";

const exec = promisify(execFile);

export interface DemoOptions {
  repo?: string;
  orders: number;
  concurrency: number;
  brokenRate: number;
  giveUpRate: number;
  seed: number;
}

export const SIMULATED_BANNER =
  "The model is SIMULATED: nightshift's bundled model simulator plays the agent's model (no network, no API key). Token counts are real counts of the simulated text; costs are simulated.";

/**
 * The whole line on a sample repository: a small TypeScript library with passing tests, a backlog
 * of work orders, the built-in agent talking to the simulator, gates and serial landing.
 */
export async function demoCommand(options: DemoOptions, print: (line: string) => void) {
  const started = Date.now();
  const repo = options.repo ?? (await mkdtemp(path.join(os.tmpdir(), "nightshift-demo-")));
  if (options.repo) await assertEmptyFolder(options.repo);
  print(`nightshift demo: ${SIMULATED_BANNER}`);
  await createDemoRepository(repo, options);
  const orders = demoOrders.slice(0, options.orders);
  print(
    `sample repository: ${repo} (textkit, ${orders.length} work orders, concurrency ${options.concurrency})`,
  );

  const factory = await openFactory(repo, "nightshift demo");
  try {
    await factory.ledger.addOrders(
      orders.map((o) => ({
        title: o.title,
        spec: o.spec,
        acceptance: o.acceptance,
        source: "demo",
      })),
    );
    const { line, close } = await buildLine(factory);
    try {
      line.onProgress((p) => print(formatProgress(p)));
      await line.run();
    } finally {
      await close();
    }
    const totals = await factory.ledger.totals();
    const spent = await timeSpent(factory.ledger.db);
    // The demo repository is ours: bring its checkout to the landed main so `git log` and the files agree.
    await exec("git", ["checkout", "--quiet", "main"], { cwd: repo });
    print("");
    print("summary (model SIMULATED)");
    for (const text of formatTotals(totals, factory.config.agent.model, Date.now() - started))
      print(`  ${text}`);
    for (const text of formatTimeSpent(spent)) print(`  ${text}`);
    print(`  repo     ${repo}`);
    print(`  see it:  git -C ${repo} log --oneline   ·   nightshift status --dir ${repo}`);
    return { repo, totals };
  } finally {
    await factory.close();
  }
}

/** The demo commits its sample project with `git add -A`: never in a folder holding anything else. */
async function assertEmptyFolder(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0) {
    throw new NightshiftError(
      "demo_folder_not_empty",
      `the demo creates its sample repository in a new or empty folder, and ${dir} holds ${entries.length} entr${entries.length === 1 ? "y" : "ies"}`,
      {
        hint: "name a folder that does not exist yet (or is empty), or leave out --repo/--dir to use a temporary folder",
      },
    );
  }
}

/** The sample repository with its nightshift.toml, committed on main, main not checked out. */
export async function createDemoRepository(
  repo: string,
  options: Pick<DemoOptions, "concurrency" | "seed" | "brokenRate" | "giveUpRate">,
): Promise<void> {
  const loader = resolveTsxLoader();
  const files = demoProjectFiles(loader);
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(repo, file)), { recursive: true });
    await writeFile(path.join(repo, file), content);
  }
  const config = configTemplate({
    name: "textkit-demo",
    branch: "main",
    // The package.json script's command itself: starting npm for every gate run costs more than
    // the tests do.
    test: demoTestCommand(loader),
    providers: { simulator: "demo" },
  })
    .replace("concurrency = 2", `concurrency = ${options.concurrency}`)
    .replace("seed = 1", `seed = ${options.seed}`)
    .replace("broken_patch_rate = 0.2", `broken_patch_rate = ${options.brokenRate}`)
    .replace("give_up_rate = 0.05", `give_up_rate = ${options.giveUpRate}`);
  await writeFile(path.join(repo, "nightshift.toml"), config);
  const git = (...args: string[]) =>
    exec(
      "git",
      ["-c", "user.name=nightshift demo", "-c", "user.email=demo@nightshift.invalid", ...args],
      {
        cwd: repo,
      },
    );
  await git("init", "--quiet", "--initial-branch=main");
  await git("add", "-A");
  await git("commit", "--quiet", "-m", "textkit: string utilities with tests");
  // nightshift moves main with update-ref; a checkout of main would fall out of step with it.
  await git("checkout", "--quiet", "--detach");
  // Outside git on purpose: the marker lets the simulator's demo patches apply here and nowhere else.
  await mkdir(path.join(repo, ".nightshift"), { recursive: true });
  await writeFile(path.join(repo, ".nightshift", DEMO_MARKER), "made by nightshift demo\n");
}
