import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import type { LineView } from "../../src/console/schema.ts";
import { demoOrders } from "../../src/sim/index.ts";
import { launchChromium } from "../support/browser.ts";
import { cliEnv } from "../support/cli.ts";
import { dropSchema, freshSchemaName, POSTGRES_URL } from "../support/ledgers.ts";
import { landedOrderTrailers, makeDemoRepo } from "../support/line.ts";

const BIN = fileURLToPath(new URL("../../bin/nightshift.js", import.meta.url));
const SHOTS = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));
const TOKEN = "console-e2e-token-0123456789";
/** Safety nets, not expectations: the machine may be busy. */
const LONG = 180_000;

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  cleanups = [];
});

/** Starts `nightshift ARGS` and resolves once it printed the console's URL. */
async function startWithConsole(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...cliEnv, ...env },
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  cleanups.push(async () => {
    child.kill("SIGKILL");
    await exited;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /console: (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then((code) => reject(new Error(`exited ${code} before serving:\n${output}`)));
  });
  return { child, url, exited, output: () => output };
}

async function until<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + LONG;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function api(page: Page, pathname: string, body?: unknown): Promise<unknown> {
  return page.evaluate(
    async ([p, b]) => {
      if (b === undefined) return (await fetch(p)).json();
      const { csrf } = await (await fetch("/api/session")).json();
      const response = await fetch(p, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-nightshift-csrf": csrf,
          "x-nightshift-actor": "e2e",
        },
        body: JSON.stringify(b),
      });
      return response.json();
    },
    [pathname, body] as const,
  );
}

describe("the supervisor's console on a real factory (simulator)", () => {
  it("shows the line live, a run's transcript and diff; pause stops new runs; a rejected order does not land", async () => {
    await mkdir(SHOTS, { recursive: true });
    const repo = await makeDemoRepo({ brokenRate: 0, giveUpRate: 0 });
    cleanups.push(repo.cleanup);
    const config = path.join(repo.dir, "nightshift.toml");
    await writeFile(
      config,
      (await readFile(config, "utf8")).replace("poll_interval_ms = 2000", "poll_interval_ms = 200"),
    );
    const line = await startWithConsole([
      "run",
      "--forever",
      "--dir",
      repo.dir,
      "--console-port",
      "0",
    ]);
    expect(new URL(line.url).hostname).toBe("127.0.0.1");
    const watch = spawn(
      process.execPath,
      [BIN, "watch", "--plain", "--url", line.url, "--dir", repo.dir],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: cliEnv,
      },
    );
    let watched = "";
    watch.stdout.on("data", (chunk) => {
      watched += chunk;
    });
    const watchExited = new Promise((resolve) => watch.on("exit", resolve));
    cleanups.push(async () => {
      watch.kill("SIGKILL");
      await watchExited;
    });
    const chromium = await launchChromium();
    cleanups.push(chromium.close);
    const page = await chromium.browser.newPage();
    await page.goto(line.url);
    await page.getByPlaceholder("your name").fill("e2e");

    // Add an order through the form; the board follows it to landed without a reload.
    const [first, second, third] = demoOrders;
    const form = page.getByTestId("add-order");
    await form.locator("input[name=title]").fill(first!.title);
    await form.locator("textarea[name=spec]").fill(first!.spec);
    await form.getByRole("button", { name: "Add" }).click();
    await page.getByTestId("order-1").waitFor({ timeout: LONG });
    await page
      .locator('[data-testid="count-landed"] .n')
      .filter({ hasText: "1" })
      .waitFor({ timeout: LONG });
    await page.screenshot({ path: path.join(SHOTS, "line.png"), fullPage: true });

    // The run's page: the agent's events, the gates, the diff, tokens and why it ended.
    await page.getByTestId("run-link-1").click();
    await page.getByTestId("run-page").waitFor({ timeout: LONG });
    await page.getByTestId("run-status").filter({ hasText: "landed" }).waitFor({ timeout: LONG });
    await expect
      .poll(() => page.locator('[data-kind="tool_call"]').count(), { timeout: LONG })
      .toBeGreaterThan(0);
    const diff = await page.getByTestId("diff").textContent();
    expect(diff).toContain(`+++ b/`);
    expect(await page.getByTestId("gate-test").count()).toBeGreaterThan(0);
    expect(await page.getByTestId("run-outcome").textContent()).toContain("Why it ended");
    await page.screenshot({ path: path.join(SHOTS, "run.png"), fullPage: true });

    // Pause: once the workers have seen it, an order added later is not started.
    await page.goto(`${line.url}#/`);
    await page.getByTestId("pause").click();
    await page.getByTestId("paused").waitFor({ timeout: LONG });
    const added = (await api(page, "/api/orders", {
      title: second!.title,
      spec: second!.spec,
    })) as {
      id: number;
    };
    const addedAt = Date.now();
    const paused = await until(async () => {
      const view = (await api(page, "/api/line")) as LineView;
      const seen = view.paused.seenAt ? Date.parse(view.paused.seenAt) : 0;
      return seen > addedAt + 500 ? view : undefined;
    }, "a worker to skip a claim round while paused");
    const waiting = paused.orders.find((o) => o.id === added.id)!;
    expect(waiting).toMatchObject({ status: "queued", lastRunId: null });
    await page.getByText("workers have stopped claiming").waitFor({ timeout: LONG });

    // An order waiting for a person, rejected from the board: cancelled, never run.
    const form2 = page.getByTestId("add-order");
    await form2.locator("input[name=title]").fill(third!.title);
    await form2.locator("textarea[name=spec]").fill(third!.spec);
    await form2.locator("input[name=needsApproval]").check();
    await form2.getByRole("button", { name: "Add" }).click();
    await page.getByTestId("reject-3").click({ timeout: LONG });
    await page
      .locator('[data-testid="order-3"][data-station="cancelled"]')
      .waitFor({ timeout: LONG });
    await page.screenshot({ path: path.join(SHOTS, "paused.png"), fullPage: true });

    // Resume: the queued order runs and lands; the rejected one stays cancelled.
    await page.getByTestId("resume").click();
    await page
      .locator('[data-testid="count-landed"] .n')
      .filter({ hasText: "2" })
      .waitFor({ timeout: LONG });
    const final = (await api(page, "/api/line")) as LineView;
    expect(final.orders.map((o) => [o.id, o.status])).toEqual([
      [1, "landed"],
      [2, "landed"],
      [3, "cancelled"],
    ]);
    expect(final.controls.map((c) => [c.action, c.actor]).reverse()).toEqual([
      ["add", "console:e2e"],
      ["pause", "console:e2e"],
      ["add", "console:e2e"],
      ["add", "console:e2e"],
      ["reject", "console:e2e"],
      ["resume", "console:e2e"],
    ]);

    await page.goto(`${line.url}#/charts`);
    await page.getByTestId("charts").locator("svg").first().waitFor({ timeout: LONG });
    await page.screenshot({ path: path.join(SHOTS, "charts.png"), fullPage: true });

    // Budget: each limit in force, where it is set and the spend against it; edited live from the
    // form (the gateway of this very process applies it to its next request), recorded with who.
    await page.goto(`${line.url}#/budget`);
    await page.getByTestId("budget-limits").waitFor({ timeout: LONG });
    expect(await page.getByTestId("limit-source-max_tokens_per_run").textContent()).toBe(
      "nightshift.toml",
    );
    const day = "max_usd_per_day";
    const setDay = async (value: string) => {
      await page.getByTestId(`limit-input-${day}`).fill(value);
      await page.getByTestId(`limit-set-${day}`).click();
    };
    // Bad values are refused with what to give, and change nothing.
    await setDay("-2");
    await page
      .getByTestId("budget-error")
      .filter({ hasText: "value: must be 0 or more" })
      .waitFor({ timeout: LONG });
    await setDay("lots");
    await page
      .getByTestId("budget-error")
      .filter({ hasText: '"lots" is not a number' })
      .waitFor({ timeout: LONG });
    await page.getByTestId("limit-input-max_tokens_per_run").fill("1.5");
    await page.getByTestId("limit-set-max_tokens_per_run").click();
    await page
      .getByTestId("budget-error")
      .filter({ hasText: "not a whole number" })
      .waitFor({ timeout: LONG });
    await page.getByTestId(`limit-note-${day}`).fill("a quiet night");
    await setDay("2.5");
    await page
      .locator(`[data-testid="limit-${day}"][data-source="override"]`)
      .waitFor({ timeout: LONG });
    expect(await page.getByTestId(`limit-value-${day}`).textContent()).toBe("$2.50");
    expect(await page.getByTestId(`limit-source-${day}`).textContent()).toContain(
      "override by console:e2e",
    );
    expect(await page.getByTestId("budget-error").count()).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, "budget.png"), fullPage: true });
    const edited = (await api(page, "/api/budget")) as {
      limits: { name: string; value: number | null; source: string }[];
    };
    expect(edited.limits.find((l) => l.name === day)).toMatchObject({
      value: 2.5,
      source: "override",
    });
    await page.getByTestId(`limit-clear-${day}`).click();
    await page
      .locator(`[data-testid="limit-${day}"]:not([data-source="override"])`)
      .waitFor({ timeout: LONG });
    const budgetControls = ((await api(page, "/api/line")) as LineView).controls
      .filter((c) => c.action === "budget-limit")
      .map((c) => [c.actor, c.note, c.details])
      .reverse();
    expect(budgetControls).toEqual([
      ["console:e2e", "a quiet night", { limit: day, from: null, to: 2.5 }],
      ["console:e2e", "", { limit: day, from: 2.5, to: null, cleared: true }],
    ]);

    // The terminal view followed the same line: one line per change.
    await until(
      async () => (/landed 2/.test(watched) ? true : undefined),
      "watch to show 2 landed",
    );
    expect(watched).toMatch(/PAUSED by console:e2e \| waiting 0 · queued 1 · running 0/);
    expect(watched).toMatch(/working \| .*landed 1/);
    watch.kill("SIGTERM");
    await watchExited;

    line.child.kill("SIGTERM");
    expect(await line.exited).toBe(0);
    expect(landedOrderTrailers(repo.dir)).toEqual(["WO-1", "WO-2"]);

    // Bound to every address, the console needs its token; without one it refuses to start.
    const refused = await startWithConsole([
      "console",
      "--dir",
      repo.dir,
      "--host",
      "0.0.0.0",
      "--port",
      "0",
    ]).catch((error: Error) => error.message);
    expect(refused).toMatch(/console_token_required|not a loopback address/);
    const guarded = await startWithConsole(
      ["console", "--dir", repo.dir, "--host", "0.0.0.0", "--port", "0"],
      { NIGHTSHIFT_CONSOLE_TOKEN: TOKEN },
    );
    const port = new URL(guarded.url).port;
    const loopback = `http://127.0.0.1:${port}`;
    const denied = await page.goto(`${loopback}/api/line`);
    expect(denied?.status()).toBe(401);
    const post = await page.evaluate(
      async (u) => (await fetch(`${u}/api/line/pause`, { method: "POST" })).status,
      loopback,
    );
    expect(post).toBe(401);
    await page.goto(`${loopback}/?token=${TOKEN}`);
    await page.getByTestId("order-2").waitFor({ timeout: LONG });
    guarded.child.kill("SIGTERM");
    expect(await guarded.exited).toBe(0);
  }, 900_000);
});

describe("the console on a PostgreSQL ledger", () => {
  it("a console in another process pauses and resumes the worker; watch reads the same ledger", async () => {
    const schema = freshSchemaName("console_e2e");
    cleanups.push(() => dropSchema(schema));
    const env = { NIGHTSHIFT_DATABASE_URL: POSTGRES_URL, NIGHTSHIFT_DATABASE_SCHEMA: schema };
    const repo = await makeDemoRepo({ brokenRate: 0, giveUpRate: 0 });
    cleanups.push(repo.cleanup);
    const config = path.join(repo.dir, "nightshift.toml");
    await writeFile(
      config,
      (await readFile(config, "utf8")).replace("poll_interval_ms = 2000", "poll_interval_ms = 200"),
    );
    // The console is its own process: it shares nothing with the worker but the ledger.
    const consoleProcess = await startWithConsole(
      ["console", "--dir", repo.dir, "--port", "0"],
      env,
    );
    const call = async (pathname: string, body?: unknown) => {
      const response = await fetch(new URL(pathname, consoleProcess.url), {
        ...(body === undefined
          ? {}
          : {
              method: "POST",
              headers: {
                "content-type": "application/json",
                "x-nightshift-csrf": csrf,
                "x-nightshift-actor": "pg",
              },
              body: JSON.stringify(body),
            }),
      });
      return response.json();
    };
    const { csrf } = (await (await fetch(new URL("/api/session", consoleProcess.url))).json()) as {
      csrf: string;
    };
    await call("/api/line/pause", { note: "before the shift" });
    const worker = await startWithConsole(
      ["run", "--forever", "--dir", repo.dir, "--console-port", "0"],
      env,
    );
    const watch = spawn(process.execPath, [BIN, "watch", "--plain", "--dir", repo.dir], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...cliEnv, ...env },
    });
    let watched = "";
    watch.stdout.on("data", (chunk) => {
      watched += chunk;
    });
    const watchExited = new Promise((resolve) => watch.on("exit", resolve));
    cleanups.push(async () => {
      watch.kill("SIGKILL");
      await watchExited;
    });

    const [first] = demoOrders;
    const added = (await call("/api/orders", { title: first!.title, spec: first!.spec })) as {
      id: number;
    };
    const addedAt = Date.now();
    const paused = await until(async () => {
      const view = (await call("/api/line")) as LineView;
      const seen = view.paused.seenAt ? Date.parse(view.paused.seenAt) : 0;
      return seen > addedAt + 500 ? view : undefined;
    }, "the worker to skip a claim round while paused");
    expect(paused.orders.find((o) => o.id === added.id)).toMatchObject({
      status: "queued",
      lastRunId: null,
    });

    await until(
      async () => (/PAUSED by console:pg/.test(watched) ? true : undefined),
      "watch to show the pause",
    );
    await call("/api/line/resume", {});
    let latest: LineView | undefined;
    const landed = await until(async () => {
      latest = (await call("/api/line")) as LineView;
      return latest.counts.landed === 1 ? latest : undefined;
    }, "the order to land after resume").catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(latest?.runs)}\n${worker.output()}`);
    });
    expect(landed.runs[0]?.workerId).toBeTruthy();
    // The worker's own console reads the same ledger, so it shows the same line.
    const fromWorker = (await (await fetch(new URL("/api/line", worker.url))).json()) as LineView;
    expect(fromWorker.orders.map((o) => o.status)).toEqual(["landed"]);
    expect(fromWorker.controls.map((c) => `${c.action} ${c.actor}`).reverse()).toEqual([
      "pause console:pg",
      "add console:pg",
      "resume console:pg",
    ]);
    await until(
      async () => (/landed 1/.test(watched) ? true : undefined),
      "watch to show the landing",
    );

    worker.child.kill("SIGTERM");
    expect(await worker.exited).toBe(0);
    consoleProcess.child.kill("SIGTERM");
    expect(await consoleProcess.exited).toBe(0);
  }, 600_000);
});
