import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import { NightshiftError } from "../errors/index.ts";
import type { HeaderReader } from "../protocols/index.ts";
import type { Upstream } from "./routing.ts";

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Most time to wait for the response headers of one attempt. */
  headersTimeoutMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  headersTimeoutMs: 120_000,
};

/** Request headers a client may pass through to the provider; everything else is dropped. */
const FORWARDED = ["accept", "anthropic-version", "anthropic-beta", "openai-beta"];
const RETRYABLE = new Set([408, 409, 429, 500, 502, 503, 504, 529]);

// undici's request rather than node:http or fetch: on the hot path it costs the least CPU per
// request of the three. No body timeout: the gateway cuts a stalled stream itself, after its own
// (configurable) idle time.
const dispatcher = new Agent({ connections: 512, keepAliveTimeout: 30_000, bodyTimeout: 0 });

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface UpstreamReply {
  status: number;
  headers: UpstreamHeaders;
  body: Readable;
  attempts: number;
}

export class UpstreamError extends NightshiftError {
  constructor(
    message: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super("upstream_unreachable", message, {
      hint: "check the provider's base URL in nightshift.toml and that it is up (nightshift doctor sends it one request)",
      details: { attempts },
      cause: options?.cause,
    });
    this.name = "UpstreamError";
  }
}

/**
 * Sends a request upstream, retrying where that is safe: before any of the reply has reached the
 * client, on rate limits, server errors, timeouts and refused connections. A retry-after from the
 * provider is honoured (within maxDelayMs).
 */
export async function forward(
  upstream: Upstream,
  url: URL,
  incoming: HeaderReader,
  body: string,
  policy: RetryPolicy,
  signal: AbortSignal,
): Promise<UpstreamReply> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const name of FORWARDED) {
    const value = incoming.get(name);
    if (value) headers[name] = value;
  }
  Object.assign(headers, authHeaders(upstream));
  let lastError: unknown;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    try {
      const response = await post(url, headers, body, policy.headersTimeoutMs, signal);
      const status = response.statusCode;
      if (!RETRYABLE.has(status) || attempt === policy.attempts) {
        return { status, headers: response.headers, body: response.body, attempts: attempt };
      }
      response.body.resume();
      const retryAfter = response.headers["retry-after"];
      await sleep(
        delayFor(attempt, policy, typeof retryAfter === "string" ? retryAfter : null),
        undefined,
        { signal },
      );
    } catch (error) {
      if (signal.aborted) throw error;
      lastError = error;
      if (attempt === policy.attempts) break;
      await sleep(delayFor(attempt, policy, null), undefined, { signal });
    }
  }
  throw new UpstreamError(
    `the model provider${upstream.name ? ` "${upstream.name}"` : ""} at ${url.origin} did not answer after ${policy.attempts} attempts: ${(lastError as Error)?.message ?? lastError}`,
    policy.attempts,
    { cause: lastError },
  );
}

function authHeaders(upstream: Upstream): Record<string, string> {
  switch (upstream.auth) {
    case "x-api-key":
      return { "x-api-key": upstream.apiKey };
    case "x-goog-api-key":
      return { "x-goog-api-key": upstream.apiKey };
    case "api-key":
      return { "api-key": upstream.apiKey };
    case "bearer":
      return { authorization: `Bearer ${upstream.apiKey}` };
    case "none":
      return {};
    default: {
      const unknown: never = upstream.auth;
      throw new Error(`unknown auth ${unknown}`);
    }
  }
}

/**
 * Each signal as an EventEmitter that undici also takes: a request adds and removes an emitter's
 * listener for much less than an AbortSignal's (EventTarget) listener, which every request in
 * flight would otherwise add to the one signal they share.
 */
const emitters = new WeakMap<AbortSignal, EventEmitter>();

function emitterOf(signal: AbortSignal): EventEmitter {
  let emitter = emitters.get(signal);
  if (!emitter) {
    const created = new EventEmitter();
    created.setMaxListeners(0);
    signal.addEventListener("abort", () => created.emit("abort"), { once: true });
    emitters.set(signal, created);
    emitter = created;
  }
  return emitter;
}

function abortError(signal: AbortSignal): Error {
  const error = new Error("The operation was aborted", { cause: signal.reason });
  error.name = "AbortError";
  return error;
}

async function post(
  url: URL,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  signal: AbortSignal,
) {
  if (signal.aborted) throw abortError(signal);
  try {
    return await request(url, {
      method: "POST",
      headers,
      body,
      dispatcher,
      signal: emitterOf(signal),
      headersTimeout: timeoutMs,
    });
  } catch (error) {
    if (signal.aborted) throw abortError(signal);
    if ((error as { code?: string }).code === "UND_ERR_HEADERS_TIMEOUT") {
      throw new Error(`no response headers within ${timeoutMs} ms`, { cause: error });
    }
    throw error;
  }
}

/** Reads a whole reply body as text. */
export function readText(body: Readable): Promise<string> {
  // Events rather than the async iterator: no promise per chunk on the hot path.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    body.on("data", (chunk: Buffer) => chunks.push(chunk));
    body.once("end", () => {
      ended = true;
      resolve((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString());
    });
    body.once("error", reject);
    body.once("close", () => {
      if (!ended) reject(new Error("the provider's reply was cut off"));
    });
  });
}

function delayFor(attempt: number, policy: RetryPolicy, retryAfter: string | null): number {
  const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, policy.maxDelayMs);
  const exponential = policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(exponential * (0.5 + Math.random() / 2), policy.maxDelayMs);
}
