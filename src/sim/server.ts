import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import {
  type ChatRequest,
  chatCompletionChunks,
  chatCompletionResponse,
  encodeSSE,
  openAIErrorBody,
  ProtocolError,
  parseChatRequest,
  type ToolCall,
  usageFor,
} from "../protocols/index.ts";
import { type Policy, type PolicyReply, SimulatorError } from "./policy.ts";

export interface SimulatorStats {
  /** Requests that produced a reply; rejected bodies and policy failures are not counted. */
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export interface SimulatorLatency {
  /** Delay before the first byte of a reply (time to first token). */
  firstTokenMs?: number;
}

export interface SimulatorOptions {
  policy: Policy;
  latency?: SimulatorLatency;
  /** Model ids listed by GET /v1/models; any model id is accepted on requests. */
  models?: string[];
  /** Shared counters; pass one in to read them from outside the app. */
  stats?: SimulatorStats;
}

export function createStats(): SimulatorStats {
  return { requests: 0, promptTokens: 0, completionTokens: 0 };
}

const DEFAULT_MODELS = ["nightshift-sim"];

function shortId(): string {
  return randomUUID().replaceAll("-", "").slice(0, 24);
}

function toWireToolCalls(reply: PolicyReply): ToolCall[] {
  return (reply.toolCalls ?? []).map((call) => ({
    id: `call_${shortId()}`,
    name: call.name,
    arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments),
  }));
}

function sleep(ms: number | undefined): Promise<void> {
  return ms && ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

function errorResponse(
  status: number,
  message: string,
  code: string | null,
  param?: string | null,
) {
  return Response.json(openAIErrorBody(status, message, undefined, code, param), { status });
}

async function readJson(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    throw new ProtocolError("invalid_json", "Request body is not valid JSON");
  }
}

function streamResponse(
  items: ReturnType<typeof chatCompletionChunks>,
  delayMs?: number,
): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      await sleep(delayMs);
      for (const item of items) controller.enqueue(encoder.encode(encodeSSE(item)));
      controller.close();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    },
  });
}

async function completion(
  request: ChatRequest,
  options: SimulatorOptions,
  stats: SimulatorStats,
  requestIndex: number,
): Promise<Response> {
  const reply = await options.policy(request, { requestIndex });
  const toolCalls = toWireToolCalls(reply);
  const content = reply.content && reply.content !== "" ? reply.content : null;
  const usage = usageFor(request, { content, toolCalls });
  stats.requests += 1;
  stats.promptTokens += usage.prompt_tokens;
  stats.completionTokens += usage.completion_tokens;
  const base = {
    id: `chatcmpl-${shortId()}`,
    model: request.model,
    created: Math.floor(Date.now() / 1000),
    content,
    toolCalls,
    usage,
  };
  if (request.stream) {
    const includeUsage = request.stream_options?.include_usage === true;
    return streamResponse(
      chatCompletionChunks({ ...base, includeUsage }),
      options.latency?.firstTokenMs,
    );
  }
  await sleep(options.latency?.firstTokenMs);
  return Response.json(chatCompletionResponse(base));
}

function failure(error: unknown): Response {
  if (error instanceof ProtocolError)
    return errorResponse(400, error.message, error.code, error.param);
  if (error instanceof SimulatorError) return errorResponse(500, error.message, error.code);
  const message = error instanceof Error ? error.message : String(error);
  return errorResponse(500, `simulator policy failed: ${message}`, "policy_error");
}

/** An OpenAI-compatible model server whose replies come from `policy`. */
export function createSimulatorApp(options: SimulatorOptions): Hono {
  const stats = options.stats ?? createStats();
  const models = options.models ?? DEFAULT_MODELS;
  let nextIndex = 0;
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    try {
      const request = parseChatRequest(await readJson(c.req.raw));
      return await completion(request, options, stats, nextIndex++);
    } catch (error) {
      return failure(error);
    }
  });
  app.get("/v1/models", (c) =>
    c.json({
      object: "list",
      data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "nightshift-sim" })),
    }),
  );
  app.notFound((c) => errorResponse(404, `No route ${c.req.method} ${c.req.path}`, "not_found"));
  return app;
}

export interface StartSimulatorOptions extends Omit<SimulatorOptions, "stats"> {
  host?: string;
  port?: number;
}

export interface RunningSimulator {
  /** Base URL including /v1, ready for an OpenAI-compatible client's baseURL. */
  url: string;
  stats: SimulatorStats;
  close(): Promise<void>;
}

export async function startSimulator(options: StartSimulatorOptions): Promise<RunningSimulator> {
  const host = options.host ?? "127.0.0.1";
  const stats = createStats();
  const app = createSimulatorApp({ ...options, stats });
  const { server, address } = await listen(app, host, options.port ?? 0);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${address.port}/v1`,
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
