/** Raised when a request body does not follow the wire protocol; `param` is the offending field path. */
export class ProtocolError extends Error {
  readonly code: string;
  readonly param: string | null;

  constructor(code: string, message: string, param: string | null = null) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
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
