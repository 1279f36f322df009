import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
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

// node:http rather than fetch: on the hot path it costs a fraction of fetch's per-request overhead.
const agents = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: 512 }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: 512 }),
};

export interface UpstreamReply {
  status: number;
  headers: IncomingMessage["headers"];
  body: IncomingMessage;
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
  const headers: http.OutgoingHttpHeaders = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  };
  for (const name of FORWARDED) {
    const value = incoming.get(name);
    if (value) headers[name] = value;
  }
  Object.assign(headers, authHeaders(upstream));
  let lastError: unknown;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    try {
      const response = await post(url, headers, body, policy.headersTimeoutMs, signal);
      const status = response.statusCode ?? 502;
      if (!RETRYABLE.has(status) || attempt === policy.attempts) {
        return { status, headers: response.headers, body: response, attempts: attempt };
      }
      response.resume();
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

function authHeaders(upstream: Upstream): http.OutgoingHttpHeaders {
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
 * The requests in flight under each signal, cut off together when it aborts: one listener per
 * signal, where http.request's own `signal` option adds (and removes) an AbortSignal listener per
 * request, which costs more than the rest of setting the request up.
 */
const inFlight = new WeakMap<AbortSignal, Set<http.ClientRequest>>();

function track(signal: AbortSignal, request: http.ClientRequest): void {
  let requests = inFlight.get(signal);
  if (!requests) {
    const live = new Set<http.ClientRequest>();
    requests = live;
    inFlight.set(signal, live);
    signal.addEventListener(
      "abort",
      () => {
        for (const r of live) r.destroy(abortError(signal));
        live.clear();
      },
      { once: true },
    );
  }
  const live = requests;
  live.add(request);
  request.once("close", () => live.delete(request));
}

function abortError(signal: AbortSignal): Error {
  const error = new Error("The operation was aborted", { cause: signal.reason });
  error.name = "AbortError";
  return error;
}

function post(
  url: URL,
  headers: http.OutgoingHttpHeaders,
  body: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      url,
      { method: "POST", headers, agent: agents[url.protocol as "http:" | "https:"] },
      (response) => {
        clearTimeout(timer);
        resolve(response);
      },
    );
    track(signal, request);
    const timer = setTimeout(() => {
      request.destroy(new Error(`no response headers within ${timeoutMs} ms`));
    }, timeoutMs);
    request.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.end(body);
  });
}

/** Reads a whole reply body as text. */
export function readText(body: IncomingMessage): Promise<string> {
  // Events rather than the async iterator: no promise per chunk on the hot path.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on("data", (chunk: Buffer) => chunks.push(chunk));
    body.once("end", () =>
      resolve((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString()),
    );
    body.once("error", reject);
    body.once("close", () => {
      if (!body.complete) reject(new Error("the provider's reply was cut off"));
    });
  });
}

function delayFor(attempt: number, policy: RetryPolicy, retryAfter: string | null): number {
  const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, policy.maxDelayMs);
  const exponential = policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(exponential * (0.5 + Math.random() / 2), policy.maxDelayMs);
}
