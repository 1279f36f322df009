import { anthropicErrorBody, openAIErrorBody } from "../errors.ts";
import { geminiErrorBody } from "../gemini.ts";
import { safeJson } from "../safe-json.ts";
import type { NeutralError, ProtocolName } from "./types.ts";

const MAX_MESSAGE = 2000;

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value : undefined;

// Anthropic's stream `error` events carry only a type; the status the same error has as a reply.
const STATUS_BY_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

/**
 * The provider's own message and type out of any of the error shapes: OpenAI's and Gemini's
 * `{error: {message, ...}}`, Anthropic's `{type: "error", error: {type, message}}`, Gemini's
 * array-wrapped form, vLLM's top-level `{message}`, or plain text.
 */
export function readUpstreamError(status: number, raw: unknown): NeutralError {
  const parsed = typeof raw === "string" ? safeJson(raw) : raw;
  const body = (Array.isArray(parsed) ? parsed[0] : parsed) as Record<string, unknown> | undefined;
  const inner = (body && typeof body === "object" ? body.error : undefined) as
    | Record<string, unknown>
    | undefined;
  const source = inner && typeof inner === "object" ? inner : (body ?? {});
  const type = text(source.type) ?? text(source.status) ?? text(source.code);
  const fallback = typeof raw === "string" ? raw.trim() : "";
  const message =
    text(source.message) ??
    (typeof inner === "string" ? inner : undefined) ??
    (fallback !== "" ? fallback : `upstream replied with HTTP ${status}`);
  const code = typeof source.code === "number" && source.code >= 400 ? source.code : undefined;
  return {
    status: status || code || (type ? (STATUS_BY_TYPE[type] ?? 500) : 500),
    message: message.slice(0, MAX_MESSAGE),
    ...(type ? { type } : {}),
  };
}

/** The same failure as the client protocol's error body. */
export function clientErrorBody(client: ProtocolName, error: NeutralError): unknown {
  if (client === "anthropic-messages") return anthropicErrorBody(error.status, error.message);
  if (client === "gemini") return geminiErrorBody(error.status, error.message);
  return openAIErrorBody(error.status, error.message, undefined, error.type ?? null);
}
