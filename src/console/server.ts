import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { Logger } from "pino";
import type { z } from "zod";
import { isNightshiftError, NightshiftError } from "../errors/index.ts";
import { type BudgetSettings, type Ledger, recordControl } from "../ledger/index.ts";
import { checkBind, consoleGuard } from "./auth.ts";
import { budgetView } from "./budget-view.ts";
import { charts } from "./charts.ts";
import { runDetail } from "./run-detail.ts";
import {
  AddOrderBody,
  AmendOrderBody,
  BudgetLimitBody,
  CloseDefectBody,
  LineSwitchBody,
  OrderControlBody,
  StopRunBody,
} from "./schema.ts";
import { ledgerVersion, lineView } from "./views.ts";

export interface ConsoleOptions {
  ledger: Ledger;
  /** The repository (for diffs) and the factory's state folder (for transcripts). */
  repo: string;
  stateDir: string;
  factory: string;
  /** nightshift.toml's [budget] limits; people's live overrides (in the ledger) go over them. */
  budget: BudgetSettings;
  logger: Logger;
  host?: string;
  port?: number;
  /** Required to bind anywhere but loopback; then every request must carry it. */
  token?: string | undefined;
  /** How often the live streams look for changes in the ledger. */
  pollMs?: number;
  /** The built UI (default: dist/console/web). */
  uiDir?: string;
}

export interface RunningConsole {
  url: string;
  close(): Promise<void>;
}

/** The console's app, without a socket: tests drive it with `app.request()`. */
export function consoleApp(options: ConsoleOptions): Hono {
  const { ledger, logger } = options;
  const guard = consoleGuard({ token: options.token });
  const pollMs = options.pollMs ?? 500;
  const watcher = new VersionWatcher(ledger, pollMs);
  const app = new Hono();

  app.onError((error, c) => {
    if (isNightshiftError(error)) {
      const status = error.code.endsWith("_not_found")
        ? 404
        : error.code.endsWith("_refused") || error.code.includes("duplicate")
          ? 409
          : 400;
      return c.json(
        {
          error: {
            code: error.code,
            message: error.message,
            ...(error.hint ? { hint: error.hint } : {}),
          },
        },
        status,
      );
    }
    logger.error({ err: error }, "console request failed");
    return c.json({ error: { code: "internal", message: "the console failed; see the log" } }, 500);
  });

  app.use("/api/*", guard.middleware);
  const actor = (c: Context) => {
    const name = (c.req.header("x-nightshift-actor") ?? "").replace(/[^\w.@-]/g, "").slice(0, 64);
    return `console:${name || "supervisor"}`;
  };

  app.get("/api/session", (c) => c.json({ csrf: guard.csrf, factory: options.factory }));
  app.get("/api/line", async (c) => c.json(await lineView(ledger, options.factory)));
  app.get("/api/charts", async (c) => {
    const hours = Number(c.req.query("hours") ?? 24);
    if (!Number.isInteger(hours) || hours < 1 || hours > 24 * 14) {
      throw invalid("hours must be a whole number from 1 to 336");
    }
    const limits = await ledger.budgetLimits.effective(options.budget);
    const value = (name: string) => limits.find((l) => l.name === name)?.value ?? null;
    return c.json(
      await charts(
        ledger,
        { dailyUsd: value("max_usd_per_day"), totalUsd: value("max_usd_total") },
        hours,
      ),
    );
  });
  app.get("/api/budget", async (c) => c.json(await budgetView(ledger, options.budget)));
  app.get("/api/runs/:id", async (c) =>
    c.json(await runDetail(ledger, options, idParam(c, "run"))),
  );
  app.get("/api/openapi.json", async (c) => {
    const { openApiDocument } = await import("./openapi.ts");
    return c.json(openApiDocument());
  });

  app.get("/api/stream", (c) =>
    streamSSE(c, async (stream) => {
      let last = "";
      const stop = watcher.subscribe(async (version) => {
        if (version === last) return;
        last = version;
        await stream.writeSSE({
          event: "line",
          data: JSON.stringify(await lineView(ledger, options.factory)),
        });
      });
      await untilAborted(stream, stop);
    }),
  );
  app.get("/api/runs/:id/stream", (c) => {
    const id = idParam(c, "run");
    return streamSSE(c, async (stream) => {
      let last = "";
      const stop = watcher.subscribe(async (version) => {
        if (version === last) return;
        last = version;
        await stream.writeSSE({
          event: "run",
          data: JSON.stringify(await runDetail(ledger, options, id)),
        });
      });
      await untilAborted(stream, stop);
    });
  });

  app.post("/api/line/pause", async (c) => {
    const body = await parse(c, LineSwitchBody);
    await ledger.line.pause(actor(c), body.note ?? "");
    return c.json(await lineView(ledger, options.factory));
  });
  app.post("/api/line/resume", async (c) => {
    const body = await parse(c, LineSwitchBody);
    await ledger.line.resume(actor(c), body.note ?? "");
    return c.json(await lineView(ledger, options.factory));
  });
  app.post("/api/orders", async (c) => {
    const body = await parse(c, AddOrderBody);
    const [order] = await ledger.addOrders([{ ...body, source: "console" }]);
    if (!order) throw new Error("the ledger added no order");
    await recordControl(ledger.db, {
      action: "add",
      order_id: order.id,
      actor: actor(c),
      details: { title: order.title, needsApproval: body.needsApproval ?? false },
    });
    return c.json({ id: order.id, status: order.status }, 201);
  });
  app.post("/api/orders/:id/control", async (c) => {
    const body = await parse(c, OrderControlBody);
    const order = await ledger.controls.apply(
      body.action,
      idParam(c, "order"),
      body.note ?? "",
      actor(c),
    );
    return c.json({ id: order.id, status: order.status });
  });
  app.post("/api/orders/:id/amend", async (c) => {
    const body = await parse(c, AmendOrderBody);
    const order = await ledger.controls.amend(
      idParam(c, "order"),
      {
        ...(body.priority !== undefined ? { priority: body.priority } : {}),
        ...(body.budgetTokens !== undefined ? { budgetTokens: body.budgetTokens } : {}),
      },
      body.note ?? "",
      actor(c),
    );
    return c.json({ id: order.id, priority: order.priority, budgetTokens: order.budget_tokens });
  });
  app.post("/api/runs/:id/stop", async (c) => {
    const body = await parse(c, StopRunBody);
    const { order, run } = await ledger.controls.stopRun(
      idParam(c, "run"),
      body.note ?? "",
      actor(c),
    );
    return c.json({ run: run.id, runStatus: run.status, order: order.id, status: order.status });
  });
  app.post("/api/budget/limits", async (c) => {
    const body = await parse(c, BudgetLimitBody);
    if (body.value === null) await ledger.budgetLimits.clear(body.name, actor(c), body.note ?? "");
    else await ledger.budgetLimits.set(body.name, body.value, actor(c), body.note ?? "");
    return c.json(await budgetView(ledger, options.budget));
  });
  app.post("/api/defects/:id/close", async (c) => {
    const body = await parse(c, CloseDefectBody);
    const defect = await ledger.controls.closeDefect(
      idParam(c, "defect"),
      body.note ?? "",
      actor(c),
    );
    return c.json({ id: defect.id, status: defect.status });
  });
  app.all("/api/*", (c) =>
    c.json(
      { error: { code: "not_found", message: `no API route ${c.req.method} ${c.req.path}` } },
      404,
    ),
  );

  const ui = options.uiDir ?? defaultUiDir();
  app.get("*", async (c) => {
    if (c.req.query("token") !== undefined) {
      if (!guard.acceptTokenLink(c)) {
        return c.json({ error: { code: "unauthorized", message: "wrong access token" } }, 401);
      }
      return c.redirect("/");
    }
    return serveUi(c, ui);
  });
  return app;
}

/** Serves the console on `host:port` (default 127.0.0.1, a free port). */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const host = options.host ?? "127.0.0.1";
  checkBind(host, options.token);
  const app = consoleApp(options);
  const server = serve({ fetch: app.fetch, hostname: host, port: options.port ?? 0 }) as Server;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server.once("listening", () => resolve(server.address() as AddressInfo));
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new NightshiftError("console_port_taken", `port ${options.port} on ${host} is in use`, {
              hint: "pick another with --console-port (0: any free port)",
            })
          : error,
      ),
    );
  });
  const shown = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shown}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/**
 * One poll of the ledger's fingerprint per interval for all streams together, and only while
 * someone watches.
 */
class VersionWatcher {
  private readonly listeners = new Set<(version: string) => Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly pollMs: number,
  ) {}

  subscribe(listener: (version: string) => Promise<void>): () => void {
    this.listeners.add(listener);
    void this.poll([listener]);
    this.timer ??= setInterval(() => void this.poll([...this.listeners]), this.pollMs);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  private async poll(listeners: ((version: string) => Promise<void>)[]): Promise<void> {
    if (this.polling && listeners.length > 1) return;
    this.polling = true;
    try {
      const version = await ledgerVersion(this.ledger);
      await Promise.all(listeners.map((l) => l(version).catch(() => undefined)));
    } catch {
      // The ledger closing under a stream: the stream ends with the server.
    } finally {
      this.polling = false;
    }
  }
}

async function untilAborted(
  stream: {
    onAbort(listener: () => void): void;
    sleep(ms: number): Promise<unknown>;
    aborted: boolean;
  },
  stop: () => void,
): Promise<void> {
  await new Promise<void>((resolve) => stream.onAbort(resolve));
  stop();
}

async function parse<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let raw: unknown;
  const text = await c.req.text();
  try {
    raw = text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    throw invalid("the body is not JSON");
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join(".") : "body";
    throw invalid(`${where}: ${issue?.message ?? "does not match the schema"}`);
  }
  return result.data;
}

function invalid(message: string): NightshiftError {
  return new NightshiftError("invalid_body", `bad request: ${message}`, {
    hint: "see docs/console-api.md for the request's schema; nothing was changed",
  });
}

function idParam(c: Context, what: "run" | "order" | "defect"): number {
  const raw = c.req.param("id") ?? "";
  const match = /^(?:WO-|D-)?(\d{1,9})$/i.exec(raw);
  if (!match) throw invalid(`${JSON.stringify(raw)} is not a ${what} number`);
  return Number(match[1]);
}

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".ico": "image/x-icon",
};

async function serveUi(c: Context, dir: string) {
  const wanted = path.resolve(dir, `.${decodeURIComponent(c.req.path)}`);
  const inside =
    wanted.startsWith(`${dir}${path.sep}`) && existsSync(wanted) && path.extname(wanted);
  const file = inside ? wanted : path.join(dir, "index.html");
  const body = await readFile(file).catch(() => undefined);
  if (!body) {
    return c.text(
      "the console's UI is not built: run `npm run build` in nightshift's folder (the API is at /api)",
      503,
    );
  }
  return c.body(body, 200, {
    "content-type": MIME[path.extname(file)] ?? "application/octet-stream",
    "cache-control": file.endsWith("index.html") ? "no-cache" : "max-age=3600",
  });
}

/** dist/console/web beside the compiled server, or (running from src/) the built copy in dist/. */
function defaultUiDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const beside = path.join(here, "web");
  return existsSync(beside) ? beside : path.resolve(here, "../../dist/console/web");
}
