import { setTimeout as sleep } from "node:timers/promises";

/** Where one protocol's requests go, and the provider key the gateway adds. */
export interface Upstream {
  /** Base URL without /v1, e.g. https://api.anthropic.com or http://127.0.0.1:4010 */
  baseURL: string;
  apiKey: string;
  /** How the provider wants its key: Anthropic's x-api-key, or a Bearer token. */
  auth: "x-api-key" | "bearer";
}

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
const FORWARDED = ["content-type", "accept", "anthropic-version", "anthropic-beta", "openai-beta"];
const RETRYABLE = new Set([408, 409, 429, 500, 502, 503, 504, 529]);

export interface UpstreamReply {
  response: Response;
  attempts: number;
}

export class UpstreamError extends Error {
  readonly code = "upstream_unreachable";
  constructor(
    message: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Sends a request upstream, retrying where that is safe: before any of the reply has reached the
 * client, on rate limits, server errors, timeouts and refused connections. A retry-after from the
 * provider is honoured (within maxDelayMs).
 */
export async function forward(
  upstream: Upstream,
  pathAndQuery: string,
  incoming: Headers,
  body: string,
  policy: RetryPolicy,
  signal: AbortSignal,
): Promise<UpstreamReply> {
  const headers = new Headers();
  for (const name of FORWARDED) {
    const value = incoming.get(name);
    if (value) headers.set(name, value);
  }
  if (upstream.auth === "x-api-key") headers.set("x-api-key", upstream.apiKey);
  else headers.set("authorization", `Bearer ${upstream.apiKey}`);
  const url = `${upstream.baseURL.replace(/\/$/, "")}${pathAndQuery}`;
  let lastError: unknown;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    const timeout = AbortSignal.timeout(policy.headersTimeoutMs);
    try {
      const response = await fetch(url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.any([signal, timeout]),
      });
      if (!RETRYABLE.has(response.status) || attempt === policy.attempts) {
        return { response, attempts: attempt };
      }
      await response.body?.cancel();
      await sleep(delayFor(attempt, policy, response.headers.get("retry-after")), undefined, {
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw error;
      lastError = error;
      if (attempt === policy.attempts) break;
      await sleep(delayFor(attempt, policy, null), undefined, { signal });
    }
  }
  throw new UpstreamError(
    `the model provider at ${upstream.baseURL} did not answer after ${policy.attempts} attempts: ${(lastError as Error)?.message ?? lastError}`,
    policy.attempts,
    { cause: lastError },
  );
}

function delayFor(attempt: number, policy: RetryPolicy, retryAfter: string | null): number {
  const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, policy.maxDelayMs);
  const exponential = policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(exponential * (0.5 + Math.random() / 2), policy.maxDelayMs);
}
