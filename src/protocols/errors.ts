import { NightshiftError } from "../errors/index.ts";

/** Raised when a request body does not follow the wire protocol; `param` is the offending field path. */
export class ProtocolError extends NightshiftError {
  readonly param: string | null;

  constructor(code: string, message: string, param: string | null = null) {
    super(code, message, { details: { param } });
    this.name = "ProtocolError";
    this.param = param;
  }
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

// Mirrors the `type` values OpenAI returns, so clients that branch on them behave as against the real API.
function errorTypeForStatus(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Provider-style error JSON; `type` defaults from the HTTP status when omitted. */
export function openAIErrorBody(
  status: number,
  message: string,
  type?: string,
  code?: string | null,
  param?: string | null,
): OpenAIErrorBody {
  return {
    error: {
      message,
      type: type ?? errorTypeForStatus(status),
      param: param ?? null,
      code: code ?? null,
    },
  };
}

export interface AnthropicErrorBody {
  type: "error";
  error: { type: string; message: string };
}

// The `error.type` values Anthropic documents per status; its SDKs map statuses, Claude Code reads both.
function anthropicErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 402) return "billing_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 504) return "timeout_error";
  if (status === 529) return "overloaded_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** Anthropic-style error JSON: `{type: "error", error: {type, message}}`; `type` defaults from the status. */
export function anthropicErrorBody(
  status: number,
  message: string,
  type?: string,
): AnthropicErrorBody {
  return { type: "error", error: { type: type ?? anthropicErrorType(status), message } };
}
