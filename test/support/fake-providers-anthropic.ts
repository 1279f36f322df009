// A fake of the Anthropic Messages API (api.anthropic.com), written from the public wire format.
import {
  bearer,
  type Exchange,
  estimateUsage,
  FakeCore,
  type FakeFailure,
  type FakeProvider,
  type FakeScript,
  type FakeTurn,
  header,
  isFailure,
  isRecord,
  makeId,
  pieces,
  sendJson,
  serve,
  startSse,
  textOf,
  textPieces,
  type Usage,
} from "./fake-providers-common.ts";

/** The API versions the fake accepts, as the real API: 2023-06-01 and 2026-10-21 (what SDK 1.x sends). */
export const ANTHROPIC_VERSIONS = ["2023-06-01", "2026-10-21"] as const;

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

const DEFAULT_MESSAGES: Record<string, string> = {
  invalid_request_error: "Invalid request",
  authentication_error: "invalid x-api-key",
  billing_error: "Your credit balance is too low to access the Anthropic API.",
  permission_error: "Your API key does not have permission to use the specified resource.",
  request_too_large: "Request exceeds the maximum allowed number of bytes.",
  rate_limit_error:
    "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
  api_error: "Internal server error",
  timeout_error: "Request timed out",
  overloaded_error: "Overloaded",
};

const BLOCK_TYPES = [
  "text",
  "image",
  "document",
  "search_result",
  "thinking",
  "redacted_thinking",
  "tool_use",
  "tool_result",
  "server_tool_use",
  "web_search_tool_result",
  "web_fetch_tool_result",
  "code_execution_tool_result",
  "bash_code_execution_tool_result",
  "text_editor_code_execution_tool_result",
  "tool_search_tool_result",
  "mcp_tool_use",
  "mcp_tool_result",
  "container_upload",
];

const MESSAGES_FIELDS = new Set([
  "model",
  "messages",
  "max_tokens",
  "system",
  "metadata",
  "stop_sequences",
  "stream",
  "tools",
  "tool_choice",
  "thinking",
  "service_tier",
  "container",
  "mcp_servers",
  "context_management",
  "output_config",
  "output_format",
  "inference_geo",
]);
const SAMPLING_FIELDS = ["temperature", "top_p", "top_k"];
const COUNT_TOKENS_FIELDS = new Set([
  "model",
  "messages",
  "system",
  "tools",
  "tool_choice",
  "thinking",
  "mcp_servers",
  "context_management",
  "output_config",
  "output_format",
]);

class InvalidRequest extends Error {}
function invalid(message: string): never {
  throw new InvalidRequest(message);
}

function toolUseIds(message: unknown): string[] {
  if (!isRecord(message) || message.role !== "assistant" || !Array.isArray(message.content))
    return [];
  return message.content
    .filter((b) => isRecord(b) && b.type === "tool_use" && typeof b.id === "string")
    .map((b) => (b as { id: string }).id);
}

function validateMessages(messages: unknown, version: string): void {
  if (messages === undefined) invalid("messages: Field required");
  if (!Array.isArray(messages)) invalid("messages: Input should be a valid list");
  if (messages.length === 0) invalid("messages: at least one message is required");
  messages.forEach((message, i) => {
    if (!isRecord(message)) invalid(`messages.${i}: Input should be a valid dictionary`);
    if (message.role !== "user" && message.role !== "assistant" && message.role !== "system")
      invalid(`messages.${i}.role: Input should be 'user', 'assistant' or 'system'`);
    const last = i === messages.length - 1;
    const content = message.content;
    if (content === undefined) invalid(`messages.${i}.content: Field required`);
    const empty =
      (typeof content === "string" && content.length === 0) ||
      (Array.isArray(content) && content.length === 0);
    if (empty && !(last && message.role === "assistant"))
      invalid(
        `messages.${i}: all messages must have non-empty content except for the optional final assistant message`,
      );
    if (typeof content !== "string" && !Array.isArray(content))
      invalid(`messages.${i}.content: Input should be a valid string or a valid list`);
    if (!Array.isArray(content)) return;
    content.forEach((block, j) => {
      // A system message (allowed anywhere in the list) holds text blocks only.
      if (message.role === "system" && (!isRecord(block) || block.type !== "text"))
        invalid(`messages.${i}.content.${j}.type: Input should be 'text'`);
      const at = `messages.${i}.content.${j}`;
      if (!isRecord(block)) invalid(`${at}: Input should be a valid dictionary`);
      if (typeof block.type !== "string" || !BLOCK_TYPES.includes(block.type))
        invalid(
          `${at}: Input tag '${String(block.type)}' found using 'type' does not match any of the expected tags: ${BLOCK_TYPES.map((t) => `'${t}'`).join(", ")}`,
        );
      switch (block.type) {
        case "text":
          if (typeof block.text !== "string") invalid(`${at}.text: Field required`);
          if (block.text.length === 0) invalid("messages: text content blocks must be non-empty");
          if (block.text.trim().length === 0)
            invalid("messages: text content blocks must contain non-whitespace text");
          if (
            version === "2026-10-21" &&
            message.role === "user" &&
            Array.isArray(block.citations) &&
            block.citations.length > 0
          )
            invalid(`${at}.citations: citations are not allowed on text blocks in user messages`);
          break;
        case "tool_use":
          if (message.role !== "assistant")
            invalid(`${at}: tool_use blocks can only appear in assistant messages`);
          if (typeof block.id !== "string") invalid(`${at}.id: Field required`);
          if (!/^[a-zA-Z0-9_-]+$/.test(block.id))
            invalid(`${at}.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
          if (typeof block.name !== "string") invalid(`${at}.name: Field required`);
          if (!isRecord(block.input)) invalid(`${at}.input: Input should be a valid dictionary`);
          break;
        case "tool_result": {
          if (message.role !== "user")
            invalid(`${at}: tool_result blocks can only appear in user messages`);
          if (typeof block.tool_use_id !== "string") invalid(`${at}.tool_use_id: Field required`);
          const previous = toolUseIds(messages[i - 1]);
          if (previous.length === 0)
            invalid(
              `${at}: tool_result block(s) provided when previous message does not contain any tool_use blocks`,
            );
          if (!previous.includes(block.tool_use_id))
            invalid(
              `${at}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${block.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
            );
          break;
        }
        case "document":
          if (version === "2026-10-21" && message.role === "assistant")
            invalid(`${at}: document blocks are not allowed in assistant messages`);
          break;
      }
    });
  });
  // Every tool_use must be answered by a tool_result in the very next message.
  messages.forEach((message, i) => {
    const ids = toolUseIds(message);
    if (ids.length === 0 || i === messages.length - 1) return;
    const next = messages[i + 1] as Record<string, unknown>;
    const answered = new Set(
      next.role === "user" && Array.isArray(next.content)
        ? next.content
            .filter((b) => isRecord(b) && b.type === "tool_result")
            .map((b) => (b as { tool_use_id: string }).tool_use_id)
        : [],
    );
    const missing = ids.filter((id) => !answered.has(id));
    if (missing.length > 0)
      invalid(
        `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
      );
  });
}

function validateTools(tools: unknown): void {
  if (tools === undefined) return;
  if (!Array.isArray(tools)) invalid("tools: Input should be a valid list");
  const names = new Set<string>();
  tools.forEach((tool, i) => {
    if (!isRecord(tool)) invalid(`tools.${i}: Input should be a valid dictionary`);
    const type = tool.type ?? "custom";
    if (type !== "custom") {
      // Server and client tools with a dated type (bash_20250124, web_search_20250305, ...).
      if (typeof type !== "string" || !(/_\d{8}$/.test(type) || type === "mcp_toolset"))
        invalid(
          `tools.${i}: Input tag '${String(type)}' found using 'type' does not match any of the expected tags: 'custom', 'bash_20250124', 'code_execution_20250825', 'memory_20250818', 'text_editor_20250728', 'web_fetch_20250910', 'web_search_20250305'`,
        );
      if (typeof tool.name === "string") names.add(tool.name);
      return;
    }
    if (typeof tool.name !== "string") invalid(`tools.${i}.custom.name: Field required`);
    if (!/^[a-zA-Z0-9_-]{1,128}$/.test(tool.name))
      invalid(`tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
    if (tool.input_schema === undefined) invalid(`tools.${i}.custom.input_schema: Field required`);
    if (!isRecord(tool.input_schema))
      invalid(`tools.${i}.custom.input_schema: Input should be a valid dictionary`);
    if (tool.input_schema.type !== "object")
      invalid(`tools.${i}.custom.input_schema.type: Input should be 'object'`);
    if (names.has(tool.name)) invalid("tools: Tool names must be unique.");
    names.add(tool.name);
  });
}

function validate(body: unknown, version: string, countTokens: boolean): void {
  if (!isRecord(body)) invalid("Input should be a valid dictionary");
  const allowed = countTokens ? COUNT_TOKENS_FIELDS : MESSAGES_FIELDS;
  for (const key of Object.keys(body)) {
    const sampling = SAMPLING_FIELDS.includes(key) && version === "2023-06-01" && !countTokens;
    if (!allowed.has(key) && !sampling) invalid(`${key}: Extra inputs are not permitted`);
  }
  if (body.model === undefined) invalid("model: Field required");
  if (typeof body.model !== "string") invalid("model: Input should be a valid string");
  if (!countTokens) {
    if (body.max_tokens === undefined) invalid("max_tokens: Field required");
    if (typeof body.max_tokens !== "number" || !Number.isInteger(body.max_tokens))
      invalid("max_tokens: Input should be a valid integer");
    if (body.max_tokens < 1) invalid("max_tokens: Input should be greater than or equal to 1");
    if (body.stream !== undefined && typeof body.stream !== "boolean")
      invalid("stream: Input should be a valid boolean");
  }
  if (
    body.system !== undefined &&
    typeof body.system !== "string" &&
    !(
      Array.isArray(body.system) &&
      body.system.every((b) => isRecord(b) && b.type === "text" && typeof b.text === "string")
    )
  )
    invalid("system: Input should be a valid string or a list of text blocks");
  validateMessages(body.messages, version);
  validateTools(body.tools);
  if (body.tool_choice !== undefined) {
    const choice = body.tool_choice;
    if (!isRecord(choice) || !["auto", "any", "tool", "none"].includes(String(choice.type)))
      invalid(
        "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
      );
    if (choice.type === "tool" && typeof choice.name !== "string")
      invalid("tool_choice.tool.name: Field required");
  }
}

export interface FakeAnthropicOptions {
  apiKey: string;
  script: FakeScript;
  /**
   * Accept the key as `Authorization: Bearer <key>` too (default true). The real API does, and
   * @anthropic-ai/sdk >= 1.0 (API version 2026-10-21) sends keys only that way. Set false to model
   * a strict x-api-key-only endpoint: a Bearer-only request then gets 401.
   */
  acceptBearer?: boolean;
}

export async function startFakeAnthropic(o: FakeAnthropicOptions): Promise<FakeProvider> {
  const core = new FakeCore(o.script);
  const acceptBearer = o.acceptBearer ?? true;

  const rateHeaders = (limited: boolean, retryAfter?: number): Record<string, string> => {
    const reset = new Date(Date.now() + (retryAfter ?? 1) * 1000)
      .toISOString()
      .replace(/\.\d+Z$/, "Z");
    const h: Record<string, string> = {
      "anthropic-ratelimit-requests-limit": "4000",
      "anthropic-ratelimit-requests-remaining": limited
        ? "0"
        : String(Math.max(0, 4000 - core.seen)),
      "anthropic-ratelimit-requests-reset": reset,
      "anthropic-ratelimit-tokens-limit": "2000000",
      "anthropic-ratelimit-tokens-remaining": limited ? "0" : "1999000",
      "anthropic-ratelimit-tokens-reset": reset,
      "anthropic-ratelimit-input-tokens-limit": "1600000",
      "anthropic-ratelimit-input-tokens-remaining": limited ? "0" : "1599000",
      "anthropic-ratelimit-input-tokens-reset": reset,
      "anthropic-ratelimit-output-tokens-limit": "400000",
      "anthropic-ratelimit-output-tokens-remaining": limited ? "0" : "399000",
      "anthropic-ratelimit-output-tokens-reset": reset,
    };
    if (retryAfter !== undefined) h["retry-after"] = String(retryAfter);
    return h;
  };

  const baseHeaders = (): Record<string, string> => ({
    "request-id": makeId("req_011C", core.nextId()),
  });

  const sendError = (
    x: Exchange,
    status: number,
    message?: string,
    extra: Record<string, string> = {},
  ): void => {
    const type = ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
    const h = baseHeaders();
    sendJson(
      x.res,
      status,
      {
        type: "error",
        error: { type, message: message ?? DEFAULT_MESSAGES[type] ?? "Error" },
        request_id: h["request-id"],
      },
      { ...h, ...extra },
    );
  };

  const sendFailure = (x: Exchange, failure: FakeFailure["fail"], model: string): void => {
    const { status, retryAfterSeconds } = failure;
    let message = failure.message;
    if (status === 404 && message === undefined) message = `model: ${model}`;
    const limited = status === 429;
    const extra = limited
      ? rateHeaders(true, retryAfterSeconds ?? 1)
      : retryAfterSeconds !== undefined
        ? { "retry-after": String(retryAfterSeconds) }
        : {};
    sendError(x, status, message, extra);
  };

  /** Returns true when the request may proceed. */
  const authorize = (x: Exchange): boolean => {
    const apiKey = header(x.recorded, "x-api-key");
    const token = bearer(x.recorded);
    if (apiKey !== undefined) {
      if (apiKey === o.apiKey) return true;
      sendError(x, 401, "invalid x-api-key");
      return false;
    }
    if (token !== undefined && acceptBearer) {
      if (token === o.apiKey) return true;
      sendError(x, 401, "Invalid bearer token");
      return false;
    }
    if (token !== undefined) {
      sendError(x, 401, "OAuth authentication is currently not supported.");
      return false;
    }
    sendError(x, 401, "x-api-key header is required");
    return false;
  };

  const checkVersion = (x: Exchange): string | undefined => {
    const version = header(x.recorded, "anthropic-version");
    if (version === undefined) {
      sendError(x, 400, "anthropic-version: header is required");
      return undefined;
    }
    if (!(ANTHROPIC_VERSIONS as readonly string[]).includes(version)) {
      sendError(x, 400, `anthropic-version: invalid version '${version}'`);
      return undefined;
    }
    return version;
  };

  const handle = (x: Exchange): void => {
    const { method, path } = x.recorded;
    if (path === "/" && (method === "HEAD" || method === "GET")) {
      x.res.writeHead(200, { ...baseHeaders(), "content-type": "text/plain" });
      x.res.end();
      return;
    }
    const countTokens = path === "/v1/messages/count_tokens";
    if (!(path === "/v1/messages" || countTokens)) {
      sendError(x, 404, "Not Found");
      return;
    }
    if (method !== "POST") {
      sendError(x, 405, `Method Not Allowed`);
      return;
    }
    if (!authorize(x)) return;
    const version = checkVersion(x);
    if (!version) return;
    if (x.parseError !== undefined || x.recorded.body === undefined) {
      sendError(x, 400, `There was an error parsing the body: ${x.parseError ?? "empty body"}`);
      return;
    }
    const body = x.recorded.body;
    try {
      validate(body, version, countTokens);
    } catch (error) {
      if (!(error instanceof InvalidRequest)) throw error;
      sendError(x, 400, error.message);
      return;
    }
    if (countTokens) {
      const input = estimateUsage(body, {}).input;
      sendJson(x.res, 200, { input_tokens: input }, baseHeaders());
      return;
    }
    const reply = core.decide(x.recorded);
    if (isFailure(reply)) {
      sendFailure(x, reply.fail, body.model);
      return;
    }
    const usage = reply.usage ?? estimateUsage(body, reply);
    const headers = { ...baseHeaders(), ...rateHeaders(false) };
    if (body.stream === true) streamMessage(x, reply, body.model, usage, headers);
    else sendJson(x.res, 200, message(reply, body.model, usage), headers);
    core.report(usage);
  };

  const blocks = (turn: FakeTurn) => {
    const out: Record<string, unknown>[] = [];
    if (turn.text) out.push({ type: "text", text: turn.text });
    for (const call of turn.toolCalls ?? [])
      out.push({
        type: "tool_use",
        id: makeId("toolu_01", core.nextId()),
        name: call.name,
        input: call.arguments,
      });
    return out;
  };
  const stopReason = (turn: FakeTurn) => (turn.toolCalls?.length ? "tool_use" : "end_turn");
  const usageObject = (input: number, output: number) => ({
    input_tokens: input,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: output,
    service_tier: "standard",
  });

  const message = (turn: FakeTurn, model: string, usage: Usage) => ({
    id: makeId("msg_01", core.nextId()),
    type: "message",
    role: "assistant",
    model,
    content: blocks(turn),
    stop_reason: stopReason(turn),
    stop_sequence: null,
    usage: usageObject(usage.input, usage.output),
  });

  const streamMessage = (
    x: Exchange,
    turn: FakeTurn,
    model: string,
    usage: Usage,
    headers: Record<string, string>,
  ): void => {
    startSse(x.res, headers);
    const send = (event: string, data: unknown) =>
      x.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send("message_start", {
      type: "message_start",
      message: {
        ...message({}, model, usage),
        content: [],
        stop_reason: null,
        usage: usageObject(usage.input, 1),
      },
    });
    send("ping", { type: "ping" });
    blocks(turn).forEach((block, index) => {
      if (block.type === "text") {
        send("content_block_start", {
          type: "content_block_start",
          index,
          content_block: { type: "text", text: "" },
        });
        for (const text of textPieces(block.text as string))
          send("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "text_delta", text },
          });
      } else {
        send("content_block_start", {
          type: "content_block_start",
          index,
          content_block: { ...block, input: {} },
        });
        // The real API opens every tool input with an empty partial_json.
        for (const partial_json of ["", ...pieces(JSON.stringify(block.input), 4)])
          send("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "input_json_delta", partial_json },
          });
      }
      send("content_block_stop", { type: "content_block_stop", index });
    });
    send("message_delta", {
      type: "message_delta",
      delta: { stop_reason: stopReason(turn), stop_sequence: null },
      usage: { output_tokens: usage.output },
    });
    send("message_stop", { type: "message_stop" });
    x.res.end();
  };

  return serve(core, handle, "");
}

// ---- helpers for scripts ----

/** Text of the latest tool_result block in a Messages request body (undefined when there is none). */
export function anthropicLastToolResult(body: unknown): string | undefined {
  if (!isRecord(body) || !Array.isArray(body.messages)) return undefined;
  for (let i = body.messages.length - 1; i >= 0; i--) {
    const m = body.messages[i];
    if (!isRecord(m) || !Array.isArray(m.content)) continue;
    for (let j = m.content.length - 1; j >= 0; j--) {
      const b = m.content[j];
      if (isRecord(b) && b.type === "tool_result") return textOf(b.content) ?? "";
    }
  }
  return undefined;
}

/** Names of the tools a Messages request offers. */
export function anthropicToolNames(body: unknown): string[] {
  if (!isRecord(body) || !Array.isArray(body.tools)) return [];
  return body.tools
    .filter((t) => isRecord(t) && typeof t.name === "string")
    .map((t) => (t as { name: string }).name);
}

/** Text of the latest user message that has text (tool results ignored). */
export function anthropicLastUserText(body: unknown): string | undefined {
  if (!isRecord(body) || !Array.isArray(body.messages)) return undefined;
  for (let i = body.messages.length - 1; i >= 0; i--) {
    const m = body.messages[i];
    if (!isRecord(m) || m.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) {
      const text = m.content
        .filter((b) => isRecord(b) && b.type === "text")
        .map((b) => (b as { text: string }).text)
        .join("");
      if (text) return text;
    }
  }
  return undefined;
}
