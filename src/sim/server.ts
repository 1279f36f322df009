import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { type Context, Hono } from "hono";
import {
  anthropicCountTokens,
  anthropicErrorBody,
  type ChatRequest,
  geminiErrorBody,
  openAIErrorBody,
  ProtocolError,
  parseAnthropicCountTokensRequest,
  type Usage,
} from "../protocols/index.ts";
import { SimulatorError } from "./errors.ts";
import {
  FAULT_KINDS,
  type FaultKind,
  type FaultSpec,
  faultSchedule,
  isHttpFault,
  normalizeFault,
  type SimulatorFaults,
} from "./faults.ts";
import type { Policy } from "./policy.ts";
import {
  anthropicProtocol,
  chatProtocol,
  geminiProtocol,
  PROTOCOL_NAMES,
  type ProtocolName,
  responsesProtocol,
  type SimProtocol,
} from "./protocols.ts";
import { renderInput } from "./reply.ts";
import { type Connection, jsonResponse, sseResponse, type Timing } from "./transport.ts";

export interface ProtocolStats {
  /** Replies served intact; rejected bodies, policy failures and faulted replies are not counted. */
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export interface SimulatorStats extends ProtocolStats {
  byProtocol: Record<ProtocolName, ProtocolStats>;
  /** Faults served, by kind, whether scheduled by `faults` or asked for by a policy reply. */
  faults: Record<FaultKind, number>;
  /** POST /v1/messages/count_tokens requests answered (not model requests: no reply, no usage). */
  tokenCountRequests: number;
}

export interface SimulatorLatency {
  /** Delay before the first byte of a reply (time to first token). */
  firstTokenMs?: number;
  /** Output speed: a streamed reply's events are spread over outputTokens / tokensPerSecond. */
  tokensPerSecond?: number;
}

export interface SimulatorOptions {
  /** Sees every request in the neutral (Chat Completions) form, whatever protocol it came in. */
  policy: Policy;
  latency?: SimulatorLatency;
  /** Faults by request number or by seeded probability; a policy reply can also ask for one. */
  faults?: SimulatorFaults;
  /** Model ids listed by GET /v1/models; any model id is accepted on requests. */
  models?: string[];
  /** Shared counters; pass one in to read them from outside the app. */
  stats?: SimulatorStats;
}

const zeroStats = (): ProtocolStats => ({ requests: 0, promptTokens: 0, completionTokens: 0 });

export function createStats(): SimulatorStats {
  return {
    ...zeroStats(),
    byProtocol: Object.fromEntries(PROTOCOL_NAMES.map((name) => [name, zeroStats()])) as Record<
      ProtocolName,
      ProtocolStats
    >,
    faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    tokenCountRequests: 0,
  };
}

const DEFAULT_MODELS = ["nightshift-sim"];

function checkLatency(latency: SimulatorLatency = {}): Required<SimulatorLatency> {
  const first = latency.firstTokenMs ?? 0;
  const speed = latency.tokensPerSecond ?? Number.POSITIVE_INFINITY;
  if (!(first >= 0)) {
    throw new SimulatorError("invalid_latency", `firstTokenMs must be >= 0, got ${first}`);
  }
  if (!(speed > 0)) {
    throw new SimulatorError("invalid_latency", `tokensPerSecond must be > 0, got ${speed}`);
  }
  return { firstTokenMs: first, tokensPerSecond: speed };
}

function timingFor(
  latency: Required<SimulatorLatency>,
  extraMs: number | undefined,
  outputTokens: number,
): Timing {
  return {
    firstMs: latency.firstTokenMs + Math.max(0, extraMs ?? 0),
    restMs: (outputTokens / latency.tokensPerSecond) * 1000,
  };
}

async function readJson(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    throw new ProtocolError("invalid_json", "Request body is not valid JSON");
  }
}

function errorResponse(
  protocol: SimProtocol,
  status: number,
  message: string,
  code: string | null,
  param?: string | null,
  headers?: Record<string, string>,
): Response {
  return Response.json(protocol.errorBody(status, message, code, param), { status, headers });
}

function failure(error: unknown, protocol: SimProtocol): Response {
  if (error instanceof ProtocolError) {
    return errorResponse(protocol, 400, error.message, error.code, error.param);
  }
  if (error instanceof SimulatorError) {
    return errorResponse(protocol, error.status, error.message, error.code);
  }
  const message = error instanceof Error ? error.message : String(error);
  return errorResponse(protocol, 500, `simulator policy failed: ${message}`, "policy_error");
}

function httpFault(fault: FaultSpec, protocol: SimProtocol): Response {
  if (fault.kind === "rate_limit") {
    const seconds = fault.retryAfterSeconds ?? 1;
    // Both SDKs read retry-after-ms first; retry-after (whole seconds) is what HTTP defines.
    const headers = {
      "retry-after": String(Math.ceil(seconds)),
      "retry-after-ms": String(Math.round(seconds * 1000)),
    };
    const message = "Rate limit exceeded (simulated fault); retry after the given delay";
    return errorResponse(protocol, 429, message, "rate_limit_exceeded", null, headers);
  }
  const status = fault.status ?? 500;
  return errorResponse(
    protocol,
    status,
    `Server error (simulated fault, HTTP ${status})`,
    "server_error",
  );
}

function record(stats: SimulatorStats, protocol: ProtocolName, usage: Usage): void {
  for (const counter of [stats, stats.byProtocol[protocol]]) {
    counter.requests += 1;
    counter.promptTokens += usage.prompt_tokens;
    counter.completionTokens += usage.completion_tokens;
  }
}

function connectionOf(c: Context): Connection {
  // @hono/node-server passes the Node request as env.incoming; app.fetch used in-process has none.
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return {
    signal: c.req.raw.signal,
    ...(incoming ? { drop: () => incoming.socket.destroy() } : {}),
  };
}

interface ServerState {
  options: SimulatorOptions;
  stats: SimulatorStats;
  latency: Required<SimulatorLatency>;
  scheduledFault: (index: number) => FaultSpec | undefined;
  nextIndex: number;
}

function servedHttpFault(state: ServerState, fault: FaultSpec, protocol: SimProtocol): Response {
  state.stats.faults[fault.kind] += 1;
  return httpFault(fault, protocol);
}

async function reply(
  c: Context,
  protocol: SimProtocol,
  request: ChatRequest,
  state: ServerState,
): Promise<Response> {
  const requestIndex = state.nextIndex++;
  const scheduled = state.scheduledFault(requestIndex);
  // An HTTP fault means the model was never consulted, so the policy does not see the request.
  if (scheduled && isHttpFault(scheduled)) return servedHttpFault(state, scheduled, protocol);
  const answer = await state.options.policy(request, { requestIndex, protocol: protocol.name });
  const fault = answer.fault !== undefined ? normalizeFault(answer.fault) : scheduled;
  if (fault && isHttpFault(fault)) return servedHttpFault(state, fault, protocol);
  const rendered = renderInput(request, answer, protocol);
  if (fault) state.stats.faults[fault.kind] += 1;
  else record(state.stats, protocol.name, rendered.usage);
  const timing = timingFor(state.latency, answer.delayMs, rendered.usage.completion_tokens);
  const conn = connectionOf(c);
  return request.stream
    ? sseResponse(protocol.events(rendered, request), timing, fault, conn)
    : await jsonResponse(protocol.json(rendered, request), timing, fault, conn);
}

function modelRoute(protocol: SimProtocol, state: ServerState) {
  return async (c: Context) => {
    let request: ChatRequest;
    try {
      request = protocol.toNeutral(await readJson(c.req.raw), c.req.path);
    } catch (error) {
      return failure(error, protocol);
    }
    try {
      return await reply(c, protocol, request, state);
    } catch (error) {
      return failure(error, protocol);
    }
  };
}

function modelList(models: readonly string[]) {
  // One body both client families read: OpenAI's list fields and Anthropic's paging fields.
  return {
    object: "list",
    data: models.map((id) => ({
      id,
      object: "model",
      created: 0,
      owned_by: "nightshift-sim",
      type: "model",
      display_name: `${id} (simulated)`,
      created_at: "1970-01-01T00:00:00Z",
    })),
    has_more: false,
    first_id: models[0] ?? null,
    last_id: models.at(-1) ?? null,
  };
}

/**
 * A model server speaking OpenAI Chat Completions, Anthropic Messages, OpenAI Responses and Google's
 * Gemini API, whose replies all come from one policy.
 */
export function createSimulatorApp(options: SimulatorOptions): Hono {
  const state: ServerState = {
    options,
    stats: options.stats ?? createStats(),
    latency: checkLatency(options.latency),
    scheduledFault: faultSchedule(options.faults),
    nextIndex: 0,
  };
  const models = options.models ?? DEFAULT_MODELS;
  const app = new Hono();
  app.post("/v1/chat/completions", modelRoute(chatProtocol, state));
  app.post("/v1/messages", modelRoute(anthropicProtocol, state));
  app.post("/v1/responses", modelRoute(responsesProtocol, state));
  // The model and the action (generateContent or streamGenerateContent) are in the path.
  app.post(geminiProtocol.route ?? "/v1beta/models/*", modelRoute(geminiProtocol, state));
  app.post("/v1/messages/count_tokens", async (c) => {
    try {
      const request = parseAnthropicCountTokensRequest(await readJson(c.req.raw));
      state.stats.tokenCountRequests += 1;
      return c.json(anthropicCountTokens(request));
    } catch (error) {
      return failure(error, anthropicProtocol);
    }
  });
  app.get("/v1/models", (c) => c.json(modelList(models)));
  // Claude Code probes the base URL with HEAD / before its first request.
  app.on(["GET", "HEAD"], "/", (c) => c.text("nightshift model simulator (SIMULATED models)\n"));
  app.notFound((c) => {
    const message = `No route ${c.req.method} ${c.req.path}`;
    const body = c.req.path.startsWith("/v1/messages")
      ? anthropicErrorBody(404, message)
      : c.req.path.startsWith("/v1beta/")
        ? geminiErrorBody(404, message)
        : openAIErrorBody(404, message, undefined, "not_found");
    return c.json(body, 404);
  });
  return app;
}

export interface StartSimulatorOptions extends Omit<SimulatorOptions, "stats"> {
  host?: string;
  port?: number;
}

export interface RunningSimulator {
  /** Base URL including /v1, ready for an OpenAI client's baseURL or the ai SDK's Anthropic provider. */
  url: string;
  /** Base URL without /v1, as ANTHROPIC_BASE_URL and the @anthropic-ai/sdk client want it. */
  rootUrl: string;
  stats: SimulatorStats;
  close(): Promise<void>;
}

export async function startSimulator(options: StartSimulatorOptions): Promise<RunningSimulator> {
  const host = options.host ?? "127.0.0.1";
  const stats = createStats();
  const app = createSimulatorApp({ ...options, stats });
  const { server, address } = await listen(app, host, options.port ?? 0);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const rootUrl = `http://${urlHost}:${address.port}`;
  return {
    url: `${rootUrl}/v1`,
    rootUrl,
    stats,
    close: () => closeServer(server),
  };
}

function listen(app: Hono, hostname: string, port: number) {
  return new Promise<{ server: Server; address: AddressInfo }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port }, (address) =>
      resolve({ server: server as Server, address }),
    );
    server.once("error", reject);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Keep-alive sockets from clients would otherwise hold close() open indefinitely.
    server.closeAllConnections();
  });
}
