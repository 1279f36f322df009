import { randomUUID, timingSafeEqual } from "node:crypto";
import { setMaxListeners } from "node:events";
import http, { type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { getRequestListener } from "@hono/node-server";
import { type Context, Hono } from "hono";
import type { Logger } from "pino";
import { isNightshiftError, NightshiftError } from "../errors/index.ts";
import type { Ledger, NewModelRequest } from "../ledger/index.ts";
import {
  anthropicCountTokens,
  anthropicMessagesWire,
  countTokens,
  createTranslation,
  eventsMentioning,
  type HeaderReader,
  type MeteredUsage,
  openAIChatWire,
  parseAnthropicCountTokensRequest,
  type RequestFacts,
  SSEDecoder,
  safeJson,
  type Translation,
  type WireProtocol,
  wireProtocolNamed,
  wireProtocols,
} from "../protocols/index.ts";
import {
  type BudgetLimits,
  type BudgetRefusal,
  Budgets,
  isRefusal,
  type Reservation,
} from "./budgets.ts";
import { type ModelFailure, providerMessage } from "./failures.ts";
import { type Grant, type RunGrant, ScopedKeys } from "./keys.ts";
import { Meter, type MeterOptions } from "./meter.ts";
import type { PriceTable } from "./prices.ts";
import {
  isRouteRefusal,
  protocolRouter,
  type Route,
  type Router,
  type Upstream,
  upstreamHeaders,
  upstreamURL,
} from "./routing.ts";
import { Transcripts } from "./transcripts.ts";
import {
  defaultRetryPolicy,
  forward,
  type RetryPolicy,
  readText,
  UpstreamError,
  type UpstreamHeaders,
} from "./upstream.ts";

export interface GatewayOptions {
  ledger: Ledger;
  logger: Logger;
  prices: PriceTable;
  /** nightshift.toml's limits; overrides set live in the ledger (`nightshift budget set`) win. */
  limits: BudgetLimits;
  /** Picks each request's provider by protocol and model. */
  router?: Router;
  /** Shorthand for a router that sends each protocol to one upstream, natively. */
  upstreams?: Partial<Record<WireProtocol["name"], Upstream>>;
  protocols?: WireProtocol[];
  retry?: Partial<RetryPolicy>;
  /** Served at GET /metrics (Prometheus text), e.g. metrics/ledgerMetrics. */
  metrics?: { contentType: string; render(): Promise<string> };
  /** A stream that sends nothing for this long is cut off. */
  streamIdleTimeoutMs?: number;
  /**
   * Enables the admin API (POST /admin/keys, DELETE /admin/keys/:runId) for workers in other
   * processes; callers must send this token as a Bearer token.
   */
  adminToken?: string;
  /** Output tokens reserved for a request that does not cap its own output. */
  outputReserveTokens?: number;
  /** A reservation never metered (its gateway died) is released after this long. */
  reservationTtlMs?: number;
  /**
   * The ledger is this process's alone (embedded): budgets are checked in memory against spend
   * loaded from the ledger, instead of a ledger transaction per request. Off for PostgreSQL, where
   * other gateways may share the budgets.
   */
  exclusiveLedger?: boolean;
  transcriptsDir?: string;
  meter?: MeterOptions;
  /** On close, requests still in flight get this long to finish before their connections are cut. */
  shutdownGraceMs?: number;
}

/** Gives one run its endpoint and key; the line knows the gateway only through this. */
export interface RunModelAccess {
  baseURL: string;
  apiKey: string;
}

/** How an exchange with the upstream ended: what is metered for it. */
interface ExchangeOutcome {
  status: number;
  usage: MeteredUsage | undefined;
  estimated?: boolean;
  attempts: number;
  error?: string | undefined;
}

interface Exchange {
  requestId: string;
  /** The protocol the client speaks. */
  protocol: WireProtocol;
  route: Route;
  /** The protocol spoken to the provider: the client's, or the one translated into. */
  upstreamWire: WireProtocol;
  translation: Translation | undefined;
  /** The model name the price table knows this request by. */
  pricedModel: string;
  grant: Grant;
  facts: RequestFacts;
  reservation: Reservation;
  started: number;
  requestText: string;
  /** The client's body, parsed from requestText. */
  body: Record<string, unknown>;
}

/**
 * The model proxy every agent talks to. It authenticates the run's scoped key, reserves budget,
 * forwards to the provider with the provider's key, meters the reply's usage exactly once (also
 * when a stream breaks or the client goes away), and keeps the run's transcript.
 */
export class Gateway {
  readonly app: Hono;
  readonly keys = new ScopedKeys();
  readonly budgets: Budgets;
  readonly meter: Meter;
  readonly transcripts: Transcripts | undefined;
  private readonly refusals = new Map<number | null, BudgetRefusal>();
  /** Per run, its last model request's failure; cleared by a success. */
  private readonly failures = new Map<number | null, ModelFailure>();
  private readonly router: Router;
  private readonly retry: RetryPolicy;
  private server: Server | undefined;
  private baseURL = "";
  private sweeper: NodeJS.Timeout | undefined;
  /** Upstream requests outlive their client (so the reply is still metered), not the gateway. */
  private readonly lifetime = new AbortController();
  /** Streams still being read to the end after their client went away. */
  private readonly draining = new Set<Promise<void>>();
  /** The model routes: exact paths, and path prefixes (Gemini names the model in its path). */
  private readonly protocolPaths = new Map<string, WireProtocol>();
  private readonly protocolPrefixes: [string, WireProtocol][] = [];

  constructor(private readonly options: GatewayOptions) {
    // options.limits are nightshift.toml's; people's live overrides in the ledger go over them.
    this.budgets = new Budgets(options.limits, options.ledger.budgets, {
      overrides: options.ledger.budgetLimits,
      ...(options.reservationTtlMs ? { reservationTtlMs: options.reservationTtlMs } : {}),
      ...(options.exclusiveLedger ? { exclusive: true } : {}),
    });
    // With the ledger the gateway's alone, budgets are held in memory and nothing waits for a row
    // to be written, so rows are written in larger batches: a ledger transaction costs about the
    // same for one row as for a hundred. Shared budgets (PostgreSQL) release a reservation only
    // when its row is written, so there the meter writes sooner.
    this.meter = new Meter(options.ledger.metering, options.logger, {
      ...(options.exclusiveLedger ? { flushIntervalMs: 100 } : {}),
      ...options.meter,
    });
    this.retry = { ...defaultRetryPolicy, ...options.retry };
    this.router = options.router ?? protocolRouter(options.upstreams ?? {});
    this.transcripts = options.transcriptsDir
      ? new Transcripts(options.transcriptsDir, { logger: options.logger })
      : undefined;
    this.app = this.buildApp(options.protocols ?? [...wireProtocols]);
    // Every upstream request in flight listens on this one signal.
    setMaxListeners(0, this.lifetime.signal);
  }

  async listen(host = "127.0.0.1", port = 0): Promise<string> {
    // Model requests, the hot path, are served by a plain node:http handler: Hono's web Request,
    // Headers, Response and ReadableStream per request cost more CPU than the rest of the gateway's
    // own work. The rest (admin, metrics, health, count_tokens) goes through Hono.
    const viaHono = getRequestListener(this.app.fetch, { hostname: host });
    const server = http.createServer((req, res) => {
      const protocol = req.method === "POST" ? this.protocolServing(req.url) : undefined;
      if (protocol) this.serveModelRequest(protocol, req, res);
      else void viaHono(req, res);
    });
    this.server = server;
    const address = await new Promise<AddressInfo>((resolve, reject) => {
      server.once("listening", () => resolve(server.address() as AddressInfo));
      server.once("error", reject);
      server.listen(port, host);
    });
    server.keepAliveTimeout = 30_000;
    // Reservations of a gateway that died are released once they expire; any gateway sweeps.
    this.sweeper = setInterval(() => {
      this.options.ledger.budgets
        .releaseExpiredReservations()
        .catch((error: unknown) =>
          this.options.logger.warn({ err: error }, "cannot release expired budget reservations"),
        );
    }, 60_000);
    this.sweeper.unref();
    this.baseURL = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
    return this.baseURL;
  }

  get url(): string {
    return this.baseURL;
  }

  /**
   * A scoped key for one run, which must be in the ledger: a key for a run the ledger does not
   * know would forward requests whose metered rows the ledger then refuses. The run's and order's
   * earlier spend (in the ledger) counts against their budgets, also after a reissue.
   */
  async openRun(grant: RunGrant): Promise<RunModelAccess> {
    const run = await this.options.ledger.getRun(grant.runId);
    if (!run) {
      throw new NightshiftError("unknown_run", `run ${grant.runId} is not in the ledger`, {
        hint: "issue keys only for runs the line has claimed (nightshift status lists them)",
        details: { runId: grant.runId },
      });
    }
    if (run.order_id !== grant.orderId) {
      throw new NightshiftError(
        "run_order_mismatch",
        `run ${grant.runId} belongs to work order ${run.order_id}, not ${grant.orderId}`,
        { hint: `send "orderId": ${run.order_id}`, details: { runId: grant.runId } },
      );
    }
    this.refusals.delete(grant.runId);
    this.failures.delete(grant.runId);
    return { baseURL: `${this.baseURL}/v1`, apiKey: this.keys.issue(grant) };
  }

  /**
   * A key for a request the factory makes on its own behalf (no run), e.g. the acceptance writer
   * drafting an order's hidden scenarios: routed, budgeted (the order's, the day's and the total
   * budget) and metered like any model request, with a null run id. `close` revokes the key and
   * writes out what was metered.
   */
  openFactory(orderId: number | null): RunModelAccess & { close(): Promise<void> } {
    const apiKey = this.keys.issue({ runId: null, orderId });
    return {
      baseURL: `${this.baseURL}/v1`,
      apiKey,
      close: async () => {
        this.keys.revokeKey(apiKey);
        await this.meter.flush();
      },
    };
  }

  /**
   * Revokes the run's key and writes out its spend; says whether a budget stopped it, and why its
   * last model request failed if it did (the agent's own account of that is often a paraphrase).
   */
  async closeRun(
    runId: number,
  ): Promise<{ refusal: BudgetRefusal | undefined; failure: ModelFailure | undefined }> {
    this.keys.revoke(runId);
    await this.meter.flush();
    const refusal = this.refusals.get(runId);
    const failure = this.failures.get(runId);
    this.refusals.delete(runId);
    this.failures.delete(runId);
    return { refusal, failure };
  }

  /**
   * Stops taking requests, lets those in flight finish (for up to shutdownGraceMs, then cuts
   * their connections), writes out what they metered and their transcripts.
   */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    const server = this.server;
    this.server = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => {
        server.closeAllConnections();
        this.lifetime.abort();
      }, this.options.shutdownGraceMs ?? 10_000);
      await closed;
      clearTimeout(grace);
    }
    await Promise.all(this.draining);
    try {
      await this.meter.close();
    } finally {
      await this.transcripts?.flush();
    }
  }

  /** The protocol whose route a request path (and query) is on, as Hono would have matched it. */
  private protocolServing(pathAndQuery: string | undefined): WireProtocol | undefined {
    if (!pathAndQuery) return undefined;
    const query = pathAndQuery.indexOf("?");
    const path = query < 0 ? pathAndQuery : pathAndQuery.slice(0, query);
    const exact = this.protocolPaths.get(path);
    if (exact) return exact;
    for (const [prefix, protocol] of this.protocolPrefixes) {
      if (path.startsWith(prefix)) return protocol;
    }
    return undefined;
  }

  private buildApp(protocols: WireProtocol[]): Hono {
    const app = new Hono();
    for (const protocol of protocols) {
      const route = protocol.route ?? protocol.path;
      if (route.endsWith("/*")) this.protocolPrefixes.push([route.slice(0, -1), protocol]);
      else this.protocolPaths.set(route, protocol);
    }
    app.post("/v1/messages/count_tokens", (c) => this.countTokens(c));
    if (this.options.adminToken) this.addAdminRoutes(app, this.options.adminToken);
    const metrics = this.options.metrics;
    if (metrics) {
      app.get("/metrics", async (c) =>
        c.body(await metrics.render(), 200, { "content-type": metrics.contentType }),
      );
    }
    app.get("/health", (c) =>
      c.json({
        ok: this.meter.healthy,
        meterBacklog: this.meter.backlog,
        activeKeys: this.keys.active,
      }),
    );
    app.notFound((c) =>
      c.json(
        openAIChatWire.errorBody(
          404,
          `the gateway does not serve ${c.req.method} ${c.req.path}`,
          "not_found",
        ),
        404,
      ),
    );
    return app;
  }

  /**
   * Anthropic's token counting is free, so it is authenticated and forwarded but not metered or
   * charged to a budget. When the model is served in another protocol, the gateway counts itself.
   */
  private async countTokens(c: Context): Promise<Response> {
    const protocol = anthropicMessagesWire;
    const fail = (status: number, message: string, code: string) =>
      c.json(protocol.errorBody(status, message, code) as object, status as 400);
    const grant = this.keys.lookup(protocol.apiKeyOf(c.req.raw.headers));
    if (!grant) return fail(401, "invalid or missing API key", "invalid_api_key");
    const text = await c.req.text();
    let request: ReturnType<typeof parseAnthropicCountTokensRequest>;
    try {
      request = parseAnthropicCountTokensRequest(safeJson(text));
    } catch (error) {
      return fail(400, (error as Error).message, "invalid_request");
    }
    const route = this.router.route(protocol.name, request.model);
    if (isRouteRefusal(route)) return fail(route.status, route.message, route.code);
    if (route.protocol !== protocol.name) return c.json(anthropicCountTokens(request));
    const url = new URL(c.req.url);
    try {
      const reply = await forward(
        route.upstream,
        upstreamURL(route.upstream, route.protocol, url.pathname + url.search),
        c.req.raw.headers,
        JSON.stringify({ ...request, model: route.model }),
        this.retry,
        c.req.raw.signal,
      );
      return new Response(await readText(reply.body), {
        status: reply.status,
        headers: passHeaders(reply.headers),
      });
    } catch (error) {
      return fail(502, (error as Error).message, "upstream_unavailable");
    }
  }

  private addAdminRoutes(app: Hono, token: string): void {
    const expected = Buffer.from(`Bearer ${token}`);
    app.use("/admin/*", async (c, next) => {
      const given = Buffer.from(c.req.header("authorization") ?? "");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return c.json({ error: { message: "admin token required", code: "unauthorized" } }, 401);
      }
      return next();
    });
    app.post("/admin/keys", async (c) => {
      const body = safeJson(await c.req.text()) as
        | { runId?: unknown; orderId?: unknown }
        | undefined;
      const runId = Number(body?.runId);
      const orderId = Number(body?.orderId);
      if (!Number.isInteger(runId) || !Number.isInteger(orderId) || runId <= 0 || orderId <= 0) {
        return c.json(
          {
            error: {
              message: 'body must be {"runId": <int>, "orderId": <int>}',
              code: "invalid_request",
            },
          },
          400,
        );
      }
      try {
        return c.json(await this.openRun({ runId, orderId }));
      } catch (error) {
        if (!isNightshiftError(error)) throw error;
        const status = error.code === "unknown_run" ? 404 : 400;
        return c.json(
          { error: { message: `${error.message}; ${error.hint}`, code: error.code } },
          status,
        );
      }
    });
    app.delete("/admin/keys/:runId", async (c) => {
      const runId = Number(c.req.param("runId"));
      if (!Number.isInteger(runId) || runId <= 0) {
        return c.json(
          {
            error: {
              message: "DELETE /admin/keys/<runId>: runId must be a positive integer",
              code: "invalid_request",
            },
          },
          400,
        );
      }
      const { refusal } = await this.closeRun(runId);
      return c.json({ revoked: true, budgetRefusal: refusal ?? null });
    });
  }

  /**
   * One model request, from the client's bytes to the reply: authenticates the key, reserves
   * budget, forwards, relays the reply and meters it. Never throws: an unexpected error is logged
   * and answered with a 500 (or cuts a reply already under way).
   */
  private serveModelRequest(
    protocol: WireProtocol,
    req: IncomingMessage,
    res: ServerResponse,
  ): void {
    this.handle(protocol, req, res).catch((error: unknown) => {
      this.options.logger.error({ err: error, path: req.url }, "gateway: model request failed");
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, protocol.errorBody(500, "internal gateway error", "internal_error"));
    });
  }

  private async handle(
    protocol: WireProtocol,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const started = performance.now();
    const fail = (status: number, message: string, code: string) =>
      sendJson(res, status, protocol.errorBody(status, message, code));
    const url = new URL(req.url ?? "/", this.baseURL);
    const headers = headerReader(req);
    const key = protocol.apiKeyOf(headers, url);
    const grant = this.keys.lookup(key);
    if (!grant) {
      return fail(
        401,
        key
          ? "invalid API key: it was never issued by this gateway or its run has ended"
          : "missing API key: send the run's scoped key (nightshift gives each run one)",
        "invalid_api_key",
      );
    }
    if (!this.meter.healthy) {
      return fail(
        503,
        "the gateway cannot record spend right now, so it forwards nothing (fail closed); retry shortly",
        "metering_unavailable",
      );
    }
    const requestText = await readBody(req);
    const body = safeJson(requestText);
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      return fail(400, "the request body must be a JSON object", "invalid_json");
    }
    let facts: RequestFacts;
    try {
      facts = protocol.inspectRequest(body, url.pathname);
    } catch (error) {
      return fail(400, (error as Error).message, "invalid_request");
    }
    const requestId = randomUUID();
    // A refused request forwards nothing, but is recorded: the run's ledger shows why it stopped.
    const refuse = async (status: number, message: string, code: string) => {
      await this.record(
        { requestId, protocol, grant, facts, started },
        { status, usage: undefined, attempts: 0, error: message },
        0,
      );
      fail(status, message, code);
    };
    const plan = this.plan(protocol, facts, body as Record<string, unknown>, requestText, url);
    if ("refused" in plan) {
      const { status, message, blocking } = plan;
      this.noteFailure(grant.runId, { status, from: "gateway", message, blocking });
      return refuse(status, message, plan.code);
    }
    let reservation: Reservation | BudgetRefusal;
    try {
      reservation = await this.budgets.reserve(grant, plan.estimate, requestId);
      if (isRefusal(reservation) && this.meter.backlog > 0) {
        // Requests that ended here still hold their reservations until their rows are written,
        // which may be all that stands in the way: write them, and ask once more.
        await this.meter.flush();
        reservation = await this.budgets.reserve(grant, plan.estimate, requestId);
      }
    } catch (error) {
      this.options.logger.error({ err: error }, "cannot reserve budget: the ledger is down");
      return fail(
        503,
        "the gateway cannot reach its ledger to reserve budget, so it forwards nothing (fail closed); retry shortly",
        "metering_unavailable",
      );
    }
    if (isRefusal(reservation)) {
      this.refusals.set(grant.runId, reservation);
      return refuse(403, reservation.message, "budget_exceeded");
    }
    const exchange: Exchange = {
      requestId,
      protocol,
      route: plan.route,
      upstreamWire: plan.upstreamWire,
      translation: plan.translation,
      pricedModel: plan.pricedModel,
      grant,
      facts,
      reservation,
      started,
      requestText,
      body: body as Record<string, unknown>,
    };
    return this.forwardExchange(exchange, headers, res, plan.outgoing);
  }

  /**
   * Where a request goes and what it costs at most, or why the gateway refuses it: no provider
   * for the model, no price to meter it by, or a request that cannot be translated.
   */
  private plan(
    protocol: WireProtocol,
    facts: RequestFacts,
    body: Record<string, unknown>,
    requestText: string,
    url: URL,
  ): Plan | PlanRefusal {
    const route = this.router.route(protocol.name, facts.model);
    if (isRouteRefusal(route)) return { ...route, blocking: true };
    const pricedModel = this.options.prices.pricedName(route.model, facts.model);
    if (pricedModel === undefined) {
      return {
        refused: true,
        status: 400,
        code: "unknown_model_price",
        message: `no price is known for model "${route.model}", so its spend cannot be metered; add it to the price table ([gateway] prices_file)`,
        blocking: true,
      };
    }
    const outputReserve = Math.min(
      facts.maxOutputTokens ?? Number.POSITIVE_INFINITY,
      this.options.outputReserveTokens ?? 4_096,
    );
    const inputBound = promptTokenBound(requestText);
    const usd = this.options.prices.costOf(pricedModel, {
      inputTokens: inputBound,
      outputTokens: outputReserve,
    }) as number;
    const translation =
      route.protocol === protocol.name
        ? undefined
        : createTranslation(protocol.name, route.protocol, {
            upstreamModel: route.model,
            clientModel: facts.model,
            chatMaxTokensField: route.chatMaxTokensField,
          });
    let outgoing: { path: string; body: Record<string, unknown> };
    try {
      outgoing = translation
        ? translation.request(body, url.pathname)
        : nativeRequest(protocol, route, facts, body, url);
    } catch (error) {
      // One request the translation cannot carry (an image, say): the agent may go on without it.
      return {
        refused: true,
        status: 400,
        code: "untranslatable_request",
        message: (error as Error).message,
        blocking: false,
      };
    }
    return {
      route,
      upstreamWire: wireProtocolNamed(route.protocol),
      translation,
      pricedModel,
      outgoing,
      estimate: { usd, tokens: inputBound + outputReserve },
    };
  }

  private async forwardExchange(
    exchange: Exchange,
    incoming: HeaderReader,
    res: ServerResponse,
    outgoing: { path: string; body: Record<string, unknown> },
  ): Promise<void> {
    const { protocol, route, translation } = exchange;
    let reply: Awaited<ReturnType<typeof forward>>;
    try {
      reply = await forward(
        route.upstream,
        upstreamURL(route.upstream, route.protocol, outgoing.path),
        upstreamHeaders(incoming, route.protocol),
        upstreamText(exchange, outgoing.body),
        this.retry,
        // Not the client's signal: a client that goes away does not stop the provider working
        // (and billing), so the reply is still read and metered.
        this.lifetime.signal,
      );
    } catch (error) {
      const message =
        error instanceof UpstreamError
          ? error.message
          : `upstream request failed: ${(error as Error).message}`;
      await this.finish(exchange, {
        status: 502,
        usage: undefined,
        attempts: error instanceof UpstreamError ? error.attempts : 1,
        error: message,
        response: "",
      });
      if (!res.destroyed) {
        this.noteFailure(exchange.grant.runId, {
          status: 502,
          from: "provider",
          message,
          blocking: true,
        });
      }
      return sendJson(res, 502, protocol.errorBody(502, message, "upstream_unavailable"));
    }
    const { status, attempts } = reply;
    const ok = status >= 200 && status < 300;
    const headers = passHeaders(reply.headers);
    if (!ok || !exchange.facts.stream) {
      const text = await readText(reply.body).catch(() => "");
      const parsed = safeJson(text);
      const usage = ok ? exchange.upstreamWire.usageFromResponse(parsed) : undefined;
      const outcome = {
        status,
        usage: ok ? (usage ?? this.estimatedUsage(exchange, text)) : undefined,
        estimated: ok && !usage,
        attempts,
        error: ok ? undefined : text.slice(0, 500),
        response: text,
      };
      if (!ok) {
        this.noteFailure(exchange.grant.runId, {
          status,
          from: "provider",
          message: providerMessage(text, status),
          blocking: BLOCKING_STATUSES.has(status),
        });
      }
      // The reply goes out before the bookkeeping (the metered row, the transcript line), which
      // then runs while the client reads it, unless their queues are nearly full: then the reply
      // waits for them, which is the back-pressure that keeps the queues bounded.
      const backedUp = this.backedUp;
      if (backedUp) await this.finish(exchange, outcome);
      if (!res.destroyed) {
        if (!translation) {
          res.writeHead(status, headers);
          res.end(text);
        } else {
          const translated = ok ? translation.response(parsed) : translation.error(status, text);
          headers["content-type"] = "application/json";
          res.writeHead(status, headers);
          res.end(JSON.stringify(translated));
        }
      }
      if (!backedUp) await this.finish(exchange, outcome);
      return;
    }
    const relaying = this.relayStream(exchange, reply.body, status, headers, attempts, res);
    // Gateway.close waits for streams still being relayed or read to the end after their client
    // went away (its server's close does not: that connection is gone).
    this.draining.add(relaying);
    try {
      await relaying;
    } finally {
      this.draining.delete(relaying);
    }
  }

  private noteFailure(runId: number | null, failure: ModelFailure): void {
    this.failures.set(runId, failure);
  }

  /**
   * Relays a stream as it arrives, chunk for chunk (nothing is held back; the provider is read
   * no faster than the client takes the chunks), metering its usage events; finishes exactly once.
   * A client that goes away does not end the exchange: the rest of the stream is read from the
   * provider, which bills it anyway, so its usage is metered.
   */
  private async relayStream(
    exchange: Exchange,
    upstreamBody: Readable,
    status: number,
    headers: Record<string, string>,
    attempts: number,
    res: ServerResponse,
  ): Promise<void> {
    const meter = exchange.upstreamWire.createStreamMeter();
    const translated = exchange.translation?.createStream();
    // A translated stream is parsed as it comes (each event is translated); one passed through is
    // parsed once it has ended, and only from its first mention of usage, the one thing the meter
    // reads: no event parsing per chunk.
    const decoder = translated ? new SSEDecoder() : undefined;
    const textDecoder = new TextDecoder();
    const idleMs = this.options.streamIdleTimeoutMs ?? 120_000;
    // One timer for the stream, pushed back by every chunk: a stream that sends nothing for idleMs
    // is cut off, which ends the loop below with this error.
    const stall = setTimeout(
      () => upstreamBody.destroy(new Error(`the provider's stream stalled for ${idleMs} ms`)),
      idleMs,
    );
    if (translated) headers["content-type"] = "text/event-stream";
    res.writeHead(status, headers);
    // The headers go out with the first chunk (one write to the socket instead of two), or on
    // their own if no chunk comes soon: the client learns promptly that its stream has begun.
    let begun = false;
    const begin = () => {
      begun = true;
      if (!res.destroyed) res.flushHeaders();
    };
    const headersDue = setTimeout(begin, FIRST_CHUNK_WAIT_MS);
    // A stream passed through is kept as its bytes and decoded once it has ended; a translated one
    // is decoded as it comes, since each event is translated.
    const chunks: Buffer[] = [];
    let received = "";
    let clientLeft = false;
    const onChunk = (bytes: Buffer): boolean => {
      stall.refresh();
      let out = "";
      if (translated && decoder) {
        const text = textDecoder.decode(bytes, { stream: true });
        received += text;
        for (const event of decoder.push(text)) {
          meter.onEvent(event);
          out += translated.push(event);
        }
      } else {
        chunks.push(bytes);
      }
      // The client left: the chunk is metered, and the rest is still read.
      if (res.destroyed) {
        clientLeft = true;
        return true;
      }
      const data = translated ? out : bytes;
      if (data.length === 0) return true;
      if (!begun) {
        begun = true;
        clearTimeout(headersDue);
      }
      return res.write(data);
    };
    const failure = await relayChunks(upstreamBody, res, onChunk);
    clearTimeout(stall);
    clearTimeout(headersDue);
    clientLeft ||= res.destroyed;
    if (!decoder) {
      received = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString();
      for (const event of eventsMentioning(received, USAGE_MENTION)) meter.onEvent(event);
    }
    const usage = meter.usage();
    const complete = usage && usage.outputTokens > 0;
    // A stream that ended well is ended for the client first, and metered while it reads the end
    // (unless the meter's or the transcripts' queue is nearly full: then the end waits for them).
    const endForClient = () => (translated ? res.end(translated.end()) : res.end());
    const endedFirst = failure === undefined && !clientLeft && !this.backedUp;
    if (endedFirst) endForClient();
    await this.finish(exchange, {
      status,
      usage: complete ? usage : this.estimatedUsage(exchange, received, usage),
      estimated: !complete,
      attempts,
      error: clientLeft
        ? failure === undefined
          ? "the client closed the stream; the rest was read from the provider and metered"
          : `the client closed the stream, then: ${failure}`
        : failure,
      response: received,
    });
    if (failure !== undefined) {
      upstreamBody.destroy();
      // A stream that broke before its first chunk still began: the client sees it cut off.
      if (!begun) begin();
      res.destroy();
      return;
    }
    if (endedFirst || res.destroyed) return;
    endForClient();
  }

  /** The meter's or the transcripts' queue is nearly full: replies wait for their bookkeeping. */
  private get backedUp(): boolean {
    return this.meter.nearlyFull || (this.transcripts?.nearlyFull ?? false);
  }

  /** When the provider reported no (or partial) usage: a conservative estimate from the text. */
  private estimatedUsage(
    exchange: Exchange,
    replyText: string,
    partial?: MeteredUsage,
  ): MeteredUsage {
    return {
      inputTokens: partial?.inputTokens || exchange.facts.estimatedInputTokens,
      outputTokens: countTokens(replyText),
      cachedInputTokens: partial?.cachedInputTokens ?? 0,
    };
  }

  /**
   * Meters the exchange and keeps its transcript. Resolves at once unless the meter's or the
   * transcripts' queue is full; then the reply waits for them (back-pressure, nothing dropped).
   */
  private async finish(
    exchange: Exchange,
    outcome: ExchangeOutcome & { response: string },
  ): Promise<void> {
    const usage = outcome.usage;
    const usd = usage ? (this.options.prices.costOf(exchange.pricedModel, usage) ?? 0) : 0;
    if (outcome.status >= 200 && outcome.status < 300) this.failures.delete(exchange.grant.runId);
    this.budgets.settle(exchange.reservation, {
      usd,
      tokens: usage ? usage.inputTokens + usage.outputTokens : 0,
    });
    const metered = this.record(exchange, outcome, usd);
    const runId = exchange.grant.runId;
    // A factory-level request (no run) has no run transcript; its metered row is its record.
    const written =
      runId === null
        ? undefined
        : this.transcripts?.append(runId, {
            requestId: exchange.requestId,
            at: new Date().toISOString(),
            protocol: exchange.protocol.name,
            model: exchange.facts.model,
            status: outcome.status,
            request: exchange.requestText,
            response: outcome.response,
            ...(usage ? { usage } : {}),
            ...(outcome.error ? { error: outcome.error } : {}),
          });
    if (metered) await metered;
    if (written) await written;
  }

  private record(
    entry: {
      requestId: string;
      protocol: WireProtocol;
      grant: Grant;
      facts: RequestFacts;
      started: number;
    },
    outcome: ExchangeOutcome,
    usd: number,
  ): Promise<void> | undefined {
    const row: NewModelRequest = {
      request_id: entry.requestId,
      run_id: entry.grant.runId,
      order_id: entry.grant.orderId,
      protocol: entry.protocol.name,
      model: entry.facts.model,
      status: outcome.status,
      stream: entry.facts.stream,
      input_tokens: outcome.usage?.inputTokens ?? 0,
      output_tokens: outcome.usage?.outputTokens ?? 0,
      cached_input_tokens: outcome.usage?.cachedInputTokens ?? 0,
      cost_usd: usd,
      usage_estimated: outcome.estimated ?? false,
      latency_ms: Math.round(performance.now() - entry.started),
      attempts: outcome.attempts,
      error: outcome.error ?? null,
    };
    return this.meter.record(row);
  }
}

/**
 * The body sent upstream. A request forwarded as the client sent it (same protocol, same model,
 * nothing added) goes out as the client's own text: serializing the parsed body again would cost
 * as much as parsing it did, for the same JSON.
 */
function upstreamText(exchange: Exchange, body: Record<string, unknown>): string {
  const upstreamBody = exchange.upstreamWire.upstreamBody(body);
  if (upstreamBody === exchange.body) return exchange.requestText;
  return JSON.stringify(upstreamBody);
}

interface Plan {
  route: Route;
  upstreamWire: WireProtocol;
  translation: Translation | undefined;
  pricedModel: string;
  outgoing: { path: string; body: Record<string, unknown> };
  estimate: { usd: number; tokens: number };
}

interface PlanRefusal {
  refused: true;
  status: number;
  code: string;
  message: string;
  blocking: boolean;
}

/** The client's own path and body, with the model renamed where the route says so. */
function nativeRequest(
  protocol: WireProtocol,
  route: Route,
  facts: RequestFacts,
  body: Record<string, unknown>,
  url: URL,
): { path: string; body: Record<string, unknown> } {
  const path = protocol.upstreamPath ? protocol.upstreamPath(url) : url.pathname + url.search;
  if (route.model === facts.model) return { path, body };
  // Gemini names the model in the path; the others in the body.
  return protocol.name === "gemini"
    ? { path: path.replace(`/models/${facts.model}:`, `/models/${route.model}:`), body }
    : { path, body: { ...body, model: route.model } };
}

/**
 * An upper bound on the prompt's tokens that needs no tokenizer: the request body's UTF-8 bytes.
 * Byte-level BPE tokenizers (OpenAI's, Anthropic's, Gemini's) never make more tokens than bytes,
 * and the body's JSON punctuation more than covers the few tokens a provider adds per message.
 * What a provider adds beyond the text is added on top: a tool-use system prompt (Anthropic's is
 * a few hundred tokens) and images, which are billed by size, not by the bytes of their URL. The
 * bound is loose (about four times the usual count), which only matters near a budget's end: it
 * is released as soon as the reply is metered.
 */
export function promptTokenBound(requestText: string): number {
  let images = 0;
  for (
    let at = requestText.indexOf('"image');
    at >= 0;
    at = requestText.indexOf('"image', at + 6)
  ) {
    images++;
  }
  const tools = requestText.includes('"tools"') || requestText.includes('"functionDeclarations"');
  return Buffer.byteLength(requestText) + 64 + (tools ? 1_024 : 0) + images * 1_600;
}

/** Every protocol's stream meter looks only at events whose data holds this ("usage", "usageMetadata"). */
const USAGE_MENTION = '"usage';

/** How long a stream's headers wait to go out with its first chunk. */
const FIRST_CHUNK_WAIT_MS = 5;

/** Provider answers that every later request would get too: the line stops instead of retrying. */
const BLOCKING_STATUSES = new Set([401, 403, 404]);

const PASSED_HEADERS = [
  "content-type",
  "cache-control",
  "request-id",
  "x-request-id",
  "retry-after",
];

function passHeaders(headers: UpstreamHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = headers[name];
    if (typeof value === "string") out[name] = value;
  }
  return out;
}

/** A Node request's headers read as the protocols read a fetch Headers (names are lower case). */
function headerReader(req: IncomingMessage): HeaderReader {
  return {
    get(name) {
      const value = req.headers[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(", ") : value;
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () =>
      resolve((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString()),
    );
    req.on("error", reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/**
 * Reads a stream to its end, handing each chunk to `onChunk` as it arrives (no promise per chunk);
 * while `onChunk` says the client cannot take more, the stream is paused until it can. Resolves
 * with why the stream broke, or undefined when it ended well.
 */
function relayChunks(
  body: Readable,
  res: ServerResponse,
  onChunk: (bytes: Buffer) => boolean,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (failure: string | undefined) => {
      if (settled) return;
      settled = true;
      body.off("data", onData);
      resolve(failure);
    };
    const onData = (bytes: Buffer) => {
      let more: boolean;
      try {
        more = onChunk(bytes);
      } catch (error) {
        body.destroy();
        settle((error as Error).message);
        return;
      }
      if (more) return;
      body.pause();
      void drained(res).then(() => body.resume());
    };
    body.on("data", onData);
    body.once("end", () => settle(undefined));
    body.once("error", (error) => settle(error.message));
    body.once("close", () => settle("Premature close"));
  });
}

/** Resolves when the client can take more (or has gone away). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
