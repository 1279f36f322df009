import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiMarkdown, consoleApp, ROUTES, startConsole } from "../../src/console/index.ts";
import type { Ledger } from "../../src/ledger/index.ts";
import { ledgerBackends, openTestLedger } from "../support/ledgers.ts";

const logger = pino({ level: "silent" });
const TOKEN = "a-long-enough-console-token";

function settings(ledger: Ledger, token?: string) {
  return {
    ledger,
    repo: "/nonexistent",
    stateDir: "/nonexistent",
    factory: "test",
    budget: { max_tokens_per_run: 500_000, max_usd_per_day: 5 },
    logger,
    ...(token ? { token } : {}),
  };
}

describe.each(ledgerBackends)("the console's API on $name", ({ location }) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let app: ReturnType<typeof consoleApp>;
  let csrf: string;
  const local = { host: "127.0.0.1:4646" };
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    app.request(path, {
      method: "POST",
      body: JSON.stringify(body),
      headers: {
        ...local,
        "content-type": "application/json",
        "x-nightshift-csrf": csrf,
        ...headers,
      },
    });

  beforeEach(async () => {
    ({ ledger, dispose } = await openTestLedger(location()));
    app = consoleApp(settings(ledger));
    csrf = (await (await app.request("/api/session", { headers: local })).json()).csrf;
  });
  afterEach(async () => {
    await dispose();
  });

  it("shows the line and applies every control through the ledger, recording who did it", async () => {
    const added = await post(
      "/api/orders",
      { title: "needs a look", needsApproval: true },
      {
        "x-nightshift-actor": "alice",
      },
    );
    expect(added.status).toBe(201);
    const { id } = await added.json();
    expect((await ledger.getOrder(id))?.status).toBe("waiting");
    const rejected = await post(
      `/api/orders/${id}/control`,
      { action: "reject", note: "no" },
      {
        "x-nightshift-actor": "alice",
      },
    );
    expect(await rejected.json()).toEqual({ id, status: "cancelled" });
    expect((await post("/api/line/pause", { note: "lunch" })).status).toBe(200);
    expect((await ledger.line.state()).paused).toBe(true);
    const [second] = await ledger.addOrders([{ title: "queued" }]);
    const amended = await post(`/api/orders/${second!.id}/amend`, {
      priority: 9,
      budgetTokens: 1000,
    });
    expect(await amended.json()).toEqual({ id: second!.id, priority: 9, budgetTokens: 1000 });

    const line = await (await app.request("/api/line", { headers: local })).json();
    expect(line.paused).toMatchObject({ paused: true, reason: "lunch", by: "console:supervisor" });
    expect(line.counts).toMatchObject({ cancelled: 1, queued: 1 });
    expect(
      line.controls.map((c: { action: string; actor: string }) => [c.action, c.actor]),
    ).toEqual([
      ["priority", "console:supervisor"],
      ["pause", "console:supervisor"],
      ["reject", "console:alice"],
      ["add", "console:alice"],
    ]);
    const charts = await (await app.request("/api/charts?hours=6", { headers: local })).json();
    expect(charts.landedPerHour).toHaveLength(6);
    expect(charts.budget).toMatchObject({ dailyUsd: 5, totalUsd: null });
  });

  it("refuses bad bodies and impossible controls with a typed error, changing nothing", async () => {
    const cases: [string, unknown, number, string][] = [
      ["/api/orders", { title: "" }, 400, "invalid_body"],
      ["/api/orders", { title: "x", priority: "high" }, 400, "invalid_body"],
      ["/api/orders", { title: "x", surprise: 1 }, 400, "invalid_body"],
      ["/api/orders/1/control", { action: "explode" }, 400, "invalid_body"],
      ["/api/orders/77/control", { action: "retry" }, 404, "order_not_found"],
      ["/api/orders/abc/control", { action: "retry" }, 400, "invalid_body"],
      ["/api/orders/1/amend", {}, 400, "invalid_body"],
      ["/api/runs/5/stop", {}, 404, "run_not_found"],
      ["/api/defects/5/close", {}, 404, "defect_not_found"],
    ];
    for (const [path, body, status, code] of cases) {
      const response = await post(path, body);
      const answer = await response.json();
      expect([path, response.status, answer.error.code]).toEqual([path, status, code]);
      expect(answer.error.message).toBeTruthy();
    }
    const notJson = await app.request("/api/orders", {
      method: "POST",
      body: "{nope",
      headers: { ...local, "x-nightshift-csrf": csrf },
    });
    expect((await notJson.json()).error.message).toContain("not JSON");
    expect(await ledger.listOrders()).toEqual([]);
    expect(await ledger.controls.history()).toEqual([]);
    const [order] = await ledger.addOrders([{ title: "a" }]);
    const refused = await post(`/api/orders/${order!.id}/control`, { action: "approve" });
    expect(refused.status).toBe(409);
    expect((await refused.json()).error.code).toBe("order_control_refused");
  });

  it("shows the spending limits and edits them live, recording who did it", async () => {
    const before = await (await app.request("/api/budget", { headers: local })).json();
    expect(
      before.limits.map((l: { name: string; value: number | null; source: string }) => [
        l.name,
        l.value,
        l.source,
      ]),
    ).toEqual([
      ["max_tokens_per_run", 500_000, "nightshift.toml"],
      ["max_usd_per_run", null, "unset"],
      ["max_usd_per_order", null, "unset"],
      ["max_usd_per_day", 5, "nightshift.toml"],
      ["max_usd_total", null, "unset"],
    ]);
    expect(before.limits[3]).toMatchObject({ unit: "usd", spent: 0, spentBy: "today (UTC)" });

    const set = await post(
      "/api/budget/limits",
      { name: "max_usd_per_day", value: 1.5, note: "quiet night" },
      { "x-nightshift-actor": "alice" },
    );
    expect(set.status).toBe(200);
    const after = await set.json();
    expect(after.limits[3]).toMatchObject({
      value: 1.5,
      source: "override",
      configured: 5,
      override: { value: 1.5, setBy: "console:alice" },
    });
    const charts = await (await app.request("/api/charts?hours=2", { headers: local })).json();
    expect(charts.budget).toMatchObject({ dailyUsd: 1.5 });
    expect((await ledger.budgetLimits.overrides()).overrides.max_usd_per_day?.value).toBe(1.5);

    const cleared = await (
      await post("/api/budget/limits", { name: "max_usd_per_day", value: null })
    ).json();
    expect(cleared.limits[3]).toMatchObject({
      value: 5,
      source: "nightshift.toml",
      override: null,
    });
    expect(
      (await ledger.controls.history()).map((c) => [c.action, c.actor, c.note, c.details]),
    ).toEqual([
      [
        "budget-limit",
        "console:supervisor",
        "",
        { limit: "max_usd_per_day", from: 1.5, to: null, cleared: true },
      ],
      [
        "budget-limit",
        "console:alice",
        "quiet night",
        { limit: "max_usd_per_day", from: null, to: 1.5 },
      ],
    ]);
  });

  it("refuses bad budget edits with what to give, changing nothing", async () => {
    const cases: [unknown, number, string, RegExp][] = [
      [
        { name: "max_usd_per_week", value: 1 },
        400,
        "invalid_body",
        /^bad request: name: .*max_usd_per_day/,
      ],
      [{ name: "max_usd_per_day", value: -2 }, 400, "invalid_body", /value: must be 0 or more/],
      [{ name: "max_usd_per_day", value: "5" }, 400, "invalid_body", /value: /],
      [{ name: "max_usd_per_day" }, 400, "invalid_body", /value: /],
      [{ name: "max_usd_per_day", value: 1, extra: true }, 400, "invalid_body", /extra/],
      [
        { name: "max_tokens_per_run", value: 10.5 },
        400,
        "budget_limit_invalid",
        /not a whole number/,
      ],
      [{ name: "max_usd_total", value: 5e9 }, 400, "budget_limit_invalid", /more than 1000000000/],
      [
        { name: "max_usd_total", value: null },
        404,
        "budget_override_not_found",
        /no override to clear/,
      ],
    ];
    for (const [body, status, code, message] of cases) {
      const response = await post("/api/budget/limits", body);
      const answer = await response.json();
      expect([body, response.status, answer.error.code]).toEqual([body, status, code]);
      expect(answer.error.message).toMatch(message);
      expect(answer.error.hint).toBeTruthy();
    }
    expect(await ledger.controls.history()).toEqual([]);
    expect((await ledger.budgetLimits.overrides()).overrides).toEqual({});
  });

  it("refuses cross-site requests: no CSRF header, a foreign Origin, a foreign Host", async () => {
    const noHeader = await app.request("/api/line/pause", { method: "POST", headers: local });
    expect(noHeader.status).toBe(403);
    expect((await noHeader.json()).error.code).toBe("csrf_refused");
    const foreign = await post("/api/line/pause", {}, { origin: "https://evil.example" });
    expect((await foreign.json()).error.code).toBe("cross_site_refused");
    const rebound = await app.request("/api/line", { headers: { host: "evil.example:4646" } });
    expect((await rebound.json()).error.code).toBe("host_refused");
    expect((await ledger.line.state()).paused).toBe(false);
    expect((await post("/api/line/pause", {}, { origin: "http://127.0.0.1:4646" })).status).toBe(
      200,
    );
  });

  it("with a token, refuses every request without it and takes it as a bearer or a cookie", async () => {
    const guarded = consoleApp(settings(ledger, TOKEN));
    const host = { host: "192.0.2.1:4646" };
    const without = await guarded.request("/api/line", { headers: host });
    expect(without.status).toBe(401);
    expect((await without.json()).error.code).toBe("unauthorized");
    const bearer = { ...host, authorization: `Bearer ${TOKEN}` };
    expect((await guarded.request("/api/line", { headers: bearer })).status).toBe(200);
    expect(
      (await guarded.request("/api/line/pause", { method: "POST", headers: bearer })).status,
    ).toBe(200);
    const link = await guarded.request(`/?token=${TOKEN}`, { headers: host });
    expect(link.status).toBe(302);
    const cookie = link.headers.get("set-cookie")!.split(";")[0]!;
    expect(link.headers.get("set-cookie")).toMatch(/HttpOnly.*SameSite=Strict/i);
    expect((await guarded.request("/api/line", { headers: { ...host, cookie } })).status).toBe(200);
    // A browser's cookie alone does not change the line: a cross-site form would send it too.
    const csrfless = await guarded.request("/api/line/resume", {
      method: "POST",
      headers: { ...host, cookie },
    });
    expect((await csrfless.json()).error.code).toBe("csrf_refused");
    expect(
      (await guarded.request("/?token=wrong-token-wrong-token", { headers: host })).status,
    ).toBe(401);
  });
});

describe("binding the console", () => {
  it("refuses a non-loopback address without a token; with one, refuses requests without it", async () => {
    const { ledger, dispose } = await openTestLedger({ kind: "memory" });
    try {
      await expect(startConsole({ ...settings(ledger), host: "0.0.0.0" })).rejects.toMatchObject({
        code: "console_token_required",
      });
      const running = await startConsole({ ...settings(ledger, TOKEN), host: "0.0.0.0" });
      try {
        // Bound to every address; reached over loopback only (tests talk to loopback alone).
        const url = new URL("/api/line", running.url);
        expect(url.hostname).toBe("127.0.0.1");
        const refused = await fetch(url);
        expect(refused.status).toBe(401);
        const allowed = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
        expect(allowed.status).toBe(200);
        expect((await allowed.json()).factory).toBe("test");
      } finally {
        await running.close();
      }
    } finally {
      await dispose();
    }
  });
});

describe("the API's documentation", () => {
  it("docs/console-api.md is generated from the schemas and lists every route the server has", async () => {
    const doc = await readFile(
      fileURLToPath(new URL("../../docs/console-api.md", import.meta.url)),
      "utf8",
    );
    expect(doc, "run `npm run docs:console`").toBe(apiMarkdown());
    const { ledger, dispose } = await openTestLedger({ kind: "memory" });
    try {
      const app = consoleApp(settings(ledger));
      const served = app.routes
        .filter((r) => r.path.startsWith("/api/") && r.path !== "/api/*" && r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`)
        .sort();
      expect(served).toEqual(ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`).sort());
    } finally {
      await dispose();
    }
  });
});
