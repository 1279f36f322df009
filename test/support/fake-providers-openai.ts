// Fakes of the OpenAI API (Chat Completions + Responses) and of an OpenAI-compatible server
// (OpenRouter / vLLM / Ollama style), written from the public wire format.
import {
  bearer,
  type Exchange,
  estimateUsage,
  FakeCore,
  type FakeFailure,
  type FakeProvider,
  type FakeScript,
  type FakeTurn,
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

interface OpenAIErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

class InvalidRequest extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}
function invalid(message: string, param: string | null = null, code: string | null = null): never {
  throw new InvalidRequest(message, param, code);
}

const CHAT_FIELDS = new Set([
  "model",
  "messages",
  "audio",
  "frequency_penalty",
  "function_call",
  "functions",
  "logit_bias",
  "logprobs",
  "max_completion_tokens",
  "max_tokens",
  "metadata",
  "modalities",
  "n",
  "parallel_tool_calls",
  "prediction",
  "presence_penalty",
  "prompt_cache_key",
  "prompt_cache_retention",
  "reasoning_effort",
  "response_format",
  "safety_identifier",
  "seed",
  "service_tier",
  "stop",
  "store",
  "stream",
  "stream_options",
  "temperature",
  "tool_choice",
  "tools",
  "top_logprobs",
  "top_p",
  "user",
  "verbosity",
  "web_search_options",
]);

const RESPONSES_FIELDS = new Set([
  "model",
  "input",
  "instructions",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "stream",
  "stream_options",
  "max_output_tokens",
  "max_tool_calls",
  "reasoning",
  "store",
  "previous_response_id",
  "conversation",
  "include",
  "text",
  "truncation",
  "metadata",
  "prompt",
  "prompt_cache_key",
  "prompt_cache_retention",
  "service_tier",
  "user",
  "safety_identifier",
  "temperature",
  "top_p",
  "top_logprobs",
  "background",
  "context_management",
  "client_metadata",
]);

const ROLES = ["system", "assistant", "user", "function", "tool", "developer"];

/** Models that take max_completion_tokens only: the o-series and gpt-5 family. */
function reasoningModel(model: string): boolean {
  return /^(o\d|gpt-5)/.test(model);
}

function validateChat(body: unknown, strict: boolean): asserts body is Record<string, unknown> {
  if (!isRecord(body)) invalid("We could not parse the JSON body of your request.");
  if (strict)
    for (const key of Object.keys(body))
      if (!CHAT_FIELDS.has(key)) invalid(`Unrecognized request argument supplied: ${key}`);
  if (typeof body.model !== "string" || body.model.length === 0)
    invalid("you must provide a model parameter");
  const messages = body.messages;
  if (messages === undefined)
    invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  if (!Array.isArray(messages))
    invalid(
      `Invalid type for 'messages': expected an array, but got ${typeof messages} instead.`,
      "messages",
      "invalid_type",
    );
  if (messages.length === 0)
    invalid(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      "messages",
      "empty_array",
    );
  let pending = new Set<string>();
  let allowed: Set<string> | null = null;
  let callsAt = -1;
  const unanswered = () =>
    invalid(
      `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending].join(", ")}`,
      `messages.[${callsAt}].role`,
    );
  messages.forEach((m, i) => {
    if (!isRecord(m))
      invalid(
        `Invalid type for 'messages[${i}]': expected an object, but got ${typeof m} instead.`,
        `messages[${i}]`,
        "invalid_type",
      );
    if (m.role === undefined)
      invalid(
        `Missing required parameter: 'messages[${i}].role'.`,
        `messages[${i}].role`,
        "missing_required_parameter",
      );
    if (typeof m.role !== "string" || !ROLES.includes(m.role))
      invalid(
        `Invalid value: '${String(m.role)}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
        `messages[${i}].role`,
        "invalid_value",
      );
    const calls = m.role === "assistant" && Array.isArray(m.tool_calls) ? m.tool_calls : [];
    if (m.role !== "tool" && pending.size > 0) unanswered();
    if (m.role === "assistant") {
      if (m.content === undefined && calls.length === 0)
        invalid(
          `Missing required parameter: 'messages[${i}].content'.`,
          `messages[${i}].content`,
          "missing_required_parameter",
        );
      calls.forEach((call, j) => {
        const at = `messages[${i}].tool_calls[${j}]`;
        if (!isRecord(call) || typeof call.id !== "string")
          invalid(
            `Missing required parameter: '${at}.id'.`,
            `${at}.id`,
            "missing_required_parameter",
          );
        if (call.type !== "function")
          invalid(
            `Missing required parameter: '${at}.type'.`,
            `${at}.type`,
            "missing_required_parameter",
          );
        if (!isRecord(call.function) || typeof call.function.name !== "string")
          invalid(
            `Missing required parameter: '${at}.function'.`,
            `${at}.function`,
            "missing_required_parameter",
          );
        if (typeof call.function.arguments !== "string")
          invalid(
            `Invalid type for '${at}.function.arguments': expected a string, but got ${typeof call.function.arguments} instead.`,
            `${at}.function.arguments`,
            "invalid_type",
          );
      });
      const ids = calls.map((c) => (c as { id: string }).id);
      pending = new Set(ids);
      allowed = ids.length > 0 ? new Set(ids) : null;
      callsAt = i;
    } else if (m.role === "tool") {
      if (allowed === null)
        invalid(
          "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          `messages.[${i}].role`,
        );
      if (typeof m.tool_call_id !== "string")
        invalid(
          `Missing required parameter: 'messages[${i}].tool_call_id'.`,
          `messages[${i}].tool_call_id`,
          "missing_required_parameter",
        );
      if (!allowed.has(m.tool_call_id))
        invalid(
          `Invalid parameter: 'tool_call_id' of '${m.tool_call_id}' not found in 'tool_calls' of previous message.`,
          `messages.[${i}].tool_call_id`,
        );
      if (m.content === undefined)
        invalid(
          `Missing required parameter: 'messages[${i}].content'.`,
          `messages[${i}].content`,
          "missing_required_parameter",
        );
      pending.delete(m.tool_call_id);
    } else {
      allowed = null;
      if (m.content === undefined)
        invalid(
          `Missing required parameter: 'messages[${i}].content'.`,
          `messages[${i}].content`,
          "missing_required_parameter",
        );
    }
  });
  if (pending.size > 0) unanswered();
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools))
      invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type");
    body.tools.forEach((tool, i) => {
      if (!isRecord(tool) || tool.type === undefined)
        invalid(
          `Missing required parameter: 'tools[${i}].type'.`,
          `tools[${i}].type`,
          "missing_required_parameter",
        );
      if (tool.type !== "function" && tool.type !== "custom")
        invalid(
          `Invalid value: '${String(tool.type)}'. Supported values are: 'function' and 'custom'.`,
          `tools[${i}].type`,
          "invalid_value",
        );
      if (tool.type === "function") {
        if (!isRecord(tool.function))
          invalid(
            `Missing required parameter: 'tools[${i}].function'.`,
            `tools[${i}].function`,
            "missing_required_parameter",
          );
        const name = tool.function.name;
        if (typeof name !== "string")
          invalid(
            `Missing required parameter: 'tools[${i}].function.name'.`,
            `tools[${i}].function.name`,
            "missing_required_parameter",
          );
        if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name))
          invalid(
            `Invalid 'tools[${i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
            `tools[${i}].function.name`,
            "invalid_value",
          );
      }
    });
  }
  if (body.stream_options !== undefined && body.stream_options !== null && body.stream !== true)
    invalid(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      "stream_options",
      "invalid_value",
    );
}

function validateResponses(body: unknown): asserts body is Record<string, unknown> {
  if (!isRecord(body)) invalid("We could not parse the JSON body of your request.");
  for (const key of Object.keys(body))
    if (!RESPONSES_FIELDS.has(key))
      invalid(`Unknown parameter: '${key}'.`, key, "unknown_parameter");
  if (body.model === undefined)
    invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter");
  if (typeof body.model !== "string")
    invalid(
      `Invalid type for 'model': expected a string, but got ${typeof body.model} instead.`,
      "model",
      "invalid_type",
    );
  if (typeof body.max_output_tokens === "number" && body.max_output_tokens < 16)
    invalid(
      `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got ${body.max_output_tokens} instead.`,
      "max_output_tokens",
      "integer_below_min_value",
    );
  const input = body.input;
  if (Array.isArray(input)) {
    if (input.length === 0)
      invalid(
        "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        "input",
        "empty_array",
      );
    const calls = new Set<string>();
    const outputs = new Set<string>();
    input.forEach((item, i) => {
      if (!isRecord(item))
        invalid(
          `Invalid type for 'input[${i}]': expected an object, but got ${typeof item} instead.`,
          `input[${i}]`,
          "invalid_type",
        );
      const type = item.type ?? (item.role !== undefined ? "message" : undefined);
      if (type === "message") {
        if (!["user", "assistant", "system", "developer"].includes(String(item.role)))
          invalid(
            `Invalid value: '${String(item.role)}'. Supported values are: 'assistant', 'system', 'developer', and 'user'.`,
            `input[${i}].role`,
            "invalid_value",
          );
        if (typeof item.content !== "string" && !Array.isArray(item.content))
          invalid(
            `Missing required parameter: 'input[${i}].content'.`,
            `input[${i}].content`,
            "missing_required_parameter",
          );
      } else if (type === "function_call") {
        if (typeof item.call_id !== "string")
          invalid(
            `Missing required parameter: 'input[${i}].call_id'.`,
            `input[${i}].call_id`,
            "missing_required_parameter",
          );
        if (typeof item.name !== "string")
          invalid(
            `Missing required parameter: 'input[${i}].name'.`,
            `input[${i}].name`,
            "missing_required_parameter",
          );
        if (typeof item.arguments !== "string")
          invalid(
            `Invalid type for 'input[${i}].arguments': expected a string, but got ${typeof item.arguments} instead.`,
            `input[${i}].arguments`,
            "invalid_type",
          );
        calls.add(item.call_id);
      } else if (type === "function_call_output") {
        if (typeof item.call_id !== "string")
          invalid(
            `Missing required parameter: 'input[${i}].call_id'.`,
            `input[${i}].call_id`,
            "missing_required_parameter",
          );
        if (typeof item.output !== "string" && !Array.isArray(item.output))
          invalid(
            `Missing required parameter: 'input[${i}].output'.`,
            `input[${i}].output`,
            "missing_required_parameter",
          );
        if (!calls.has(item.call_id) && body.previous_response_id == null)
          invalid(
            `No tool call found for function call output with call_id ${item.call_id}.`,
            "input",
          );
        outputs.add(item.call_id);
      } else if (typeof type !== "string") {
        invalid(
          `Missing required parameter: 'input[${i}].type'.`,
          `input[${i}].type`,
          "missing_required_parameter",
        );
      }
    });
    for (const id of calls)
      if (!outputs.has(id)) invalid(`No tool output found for function call ${id}.`, "input");
  } else if (input !== undefined && typeof input !== "string") {
    invalid(
      `Invalid type for 'input': expected one of a string or array of input items, but got ${typeof input} instead.`,
      "input",
      "invalid_type",
    );
  }
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools))
      invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type");
    body.tools.forEach((tool, i) => {
      if (!isRecord(tool) || typeof tool.type !== "string")
        invalid(
          `Missing required parameter: 'tools[${i}].type'.`,
          `tools[${i}].type`,
          "missing_required_parameter",
        );
      if (tool.type === "function" && typeof tool.name !== "string")
        invalid(
          `Missing required parameter: 'tools[${i}].name'.`,
          `tools[${i}].name`,
          "missing_required_parameter",
        );
    });
  }
}

function maskKey(key: string): string {
  if (key.length <= 8) return key;
  return `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}`;
}

type Flavour = "openai" | "compatible";

interface ChatFakeOptions {
  flavour: Flavour;
  apiKey?: string;
  script: FakeScript;
  prefix: string;
  models?: string[];
}

async function startChatFake(o: ChatFakeOptions): Promise<FakeProvider> {
  const core = new FakeCore(o.script);
  const openai = o.flavour === "openai";

  const rateHeaders = (limited: boolean, retryAfter?: number): Record<string, string> => {
    if (!openai) {
      const h: Record<string, string> = {};
      if (limited) h["retry-after"] = String(retryAfter ?? 1);
      return h;
    }
    const h: Record<string, string> = {
      "x-ratelimit-limit-requests": "5000",
      "x-ratelimit-limit-tokens": "800000",
      "x-ratelimit-remaining-requests": limited ? "0" : String(Math.max(0, 5000 - core.seen)),
      "x-ratelimit-remaining-tokens": limited ? "0" : "799000",
      "x-ratelimit-reset-requests": limited ? `${retryAfter ?? 1}s` : "12ms",
      "x-ratelimit-reset-tokens": limited ? `${retryAfter ?? 1}s` : "75ms",
    };
    if (limited) h["retry-after"] = String(retryAfter ?? 1);
    return h;
  };
  const baseHeaders = (): Record<string, string> =>
    openai
      ? {
          "x-request-id": `req_${makeId("", core.nextId(), 32).toLowerCase()}`,
          "openai-version": "2020-10-01",
          "openai-processing-ms": "3",
          "openai-organization": "org-fake",
        }
      : {};

  const sendError = (
    x: Exchange,
    status: number,
    error: OpenAIErrorBody,
    extra: Record<string, string> = {},
  ): void => {
    // OpenRouter-style servers answer {"error":{"message","code":<status>}}.
    const body = openai ? { error } : { error: { message: error.message, code: status } };
    sendJson(x.res, status, body, { ...baseHeaders(), ...extra });
  };

  const sendFailure = (x: Exchange, failure: FakeFailure["fail"], model: string): void => {
    const { status, retryAfterSeconds } = failure;
    let error: OpenAIErrorBody;
    if (status === 401)
      error = {
        message: failure.message ?? "Incorrect API key provided.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      };
    else if (status === 403)
      error = {
        message: failure.message ?? "You are not allowed to sample from this model",
        type: "invalid_request_error",
        param: null,
        code: null,
      };
    else if (status === 404)
      error = {
        message:
          failure.message ??
          `The model \`${model}\` does not exist or you do not have access to it.`,
        type: "invalid_request_error",
        param: null,
        code: "model_not_found",
      };
    else if (status === 429)
      error = {
        message:
          failure.message ??
          `Rate limit reached for ${model} in organization org-fake on requests per min (RPM): Limit 5000, Used 5000, Requested 1. Please try again in ${retryAfterSeconds ?? 1}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      };
    else if (status >= 500)
      error = {
        message:
          failure.message ??
          (status === 503
            ? "The engine is currently overloaded, please try again later"
            : "The server had an error while processing your request. Sorry about that!"),
        type: "server_error",
        param: null,
        code: null,
      };
    else
      error = {
        message: failure.message ?? "Invalid request",
        type: "invalid_request_error",
        param: null,
        code: null,
      };
    const extra =
      status === 429
        ? rateHeaders(true, retryAfterSeconds)
        : retryAfterSeconds !== undefined
          ? { "retry-after": String(retryAfterSeconds) }
          : {};
    sendError(x, status, error, extra);
  };

  const authorize = (x: Exchange): boolean => {
    if (o.apiKey === undefined) return true;
    const token = bearer(x.recorded);
    if (token === undefined) {
      sendError(x, 401, {
        message: openai
          ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys."
          : "No auth credentials found",
        type: "invalid_request_error",
        param: null,
        code: null,
      });
      return false;
    }
    if (token !== o.apiKey) {
      sendError(x, 401, {
        message: openai
          ? `Incorrect API key provided: ${maskKey(token)}. You can find your API key at https://platform.openai.com/account/api-keys.`
          : "User not found.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      });
      return false;
    }
    return true;
  };

  const handle = (x: Exchange): void => {
    const { method, path } = x.recorded;
    const route = path.startsWith(`${o.prefix}/`) ? path.slice(o.prefix.length) : undefined;
    const known =
      route === "/chat/completions" || route === "/models" || (openai && route === "/responses");
    if (!known) {
      sendError(x, 404, {
        message: openai ? `Invalid URL (${method} ${path})` : "Not Found",
        type: "invalid_request_error",
        param: null,
        code: null,
      });
      return;
    }
    if (!authorize(x)) return;
    if (route === "/models") {
      if (method !== "GET") {
        sendError(x, 405, {
          message: "Method Not Allowed",
          type: "invalid_request_error",
          param: null,
          code: null,
        });
        return;
      }
      const ids = o.models ?? ["fake-model"];
      sendJson(
        x.res,
        200,
        {
          object: "list",
          data: ids.map((id) => ({
            id,
            object: "model",
            created: 1_700_000_000,
            owned_by: "fake",
          })),
        },
        baseHeaders(),
      );
      return;
    }
    if (method !== "POST") {
      sendError(x, 405, {
        message: `Invalid URL (${method} ${path})`,
        type: "invalid_request_error",
        param: null,
        code: null,
      });
      return;
    }
    if (x.parseError !== undefined || x.recorded.body === undefined) {
      sendError(x, 400, {
        message:
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
        type: "invalid_request_error",
        param: null,
        code: null,
      });
      return;
    }
    const body = x.recorded.body;
    try {
      if (route === "/responses") validateResponses(body);
      else {
        validateChat(body, openai);
        if (openai && body.max_tokens !== undefined && reasoningModel(String(body.model)))
          invalid(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
          );
      }
    } catch (error) {
      if (!(error instanceof InvalidRequest)) throw error;
      sendError(x, 400, {
        message: error.message,
        type: "invalid_request_error",
        param: error.param,
        code: error.code,
      });
      return;
    }
    const reply = core.decide(x.recorded);
    if (isFailure(reply)) {
      sendFailure(x, reply.fail, String(body.model));
      return;
    }
    const usage = reply.usage ?? estimateUsage(body, reply);
    const headers = { ...baseHeaders(), ...rateHeaders(false) };
    if (route === "/responses") {
      if (body.stream === true) streamResponse(x, reply, body, usage, headers);
      else
        sendJson(
          x.res,
          200,
          responseObject(reply, body, usage, "completed", responseIds(reply)),
          headers,
        );
      core.report(usage);
      return;
    }
    if (body.stream === true) {
      const includeUsage =
        isRecord(body.stream_options) && body.stream_options.include_usage === true;
      streamChat(x, reply, String(body.model), usage, includeUsage, headers);
      core.report(includeUsage ? usage : undefined);
    } else {
      sendJson(x.res, 200, chatCompletion(reply, String(body.model), usage), headers);
      core.report(usage);
    }
  };

  // ---- chat completions ----

  const chatUsage = (usage: Usage) => ({
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  });
  const toolCallsOf = (turn: FakeTurn) =>
    (turn.toolCalls ?? []).map((call) => ({
      id: makeId("call_", core.nextId()),
      type: "function" as const,
      function: { name: call.name, arguments: JSON.stringify(call.arguments) },
    }));
  const finishReason = (turn: FakeTurn) => (turn.toolCalls?.length ? "tool_calls" : "stop");

  const chatCompletion = (turn: FakeTurn, model: string, usage: Usage) => {
    const toolCalls = toolCallsOf(turn);
    return {
      id: makeId("chatcmpl-", core.nextId(), 29),
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: turn.text ?? null,
            refusal: null,
            ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            annotations: [],
          },
          logprobs: null,
          finish_reason: finishReason(turn),
        },
      ],
      usage: chatUsage(usage),
      service_tier: "default",
      system_fingerprint: null,
    };
  };

  const streamChat = (
    x: Exchange,
    turn: FakeTurn,
    model: string,
    usage: Usage,
    includeUsage: boolean,
    headers: Record<string, string>,
  ): void => {
    startSse(x.res, headers);
    const id = makeId("chatcmpl-", core.nextId(), 29);
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => {
      const data = {
        id,
        object: "chat.completion.chunk",
        created,
        model,
        service_tier: "default",
        system_fingerprint: null,
        choices,
        ...(includeUsage ? { usage: null } : {}),
        ...extra,
      };
      x.res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    const delta = (d: Record<string, unknown>, finish: string | null = null) =>
      chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
    const toolCalls = toolCallsOf(turn);
    const text = turn.text ?? "";
    delta({
      role: "assistant",
      content: text || toolCalls.length === 0 ? "" : null,
      refusal: null,
    });
    if (text) for (const content of textPieces(text)) delta({ content });
    toolCalls.forEach((call, index) => {
      delta({
        tool_calls: [
          {
            index,
            id: call.id,
            type: "function",
            function: { name: call.function.name, arguments: "" },
          },
        ],
      });
      for (const args of pieces(call.function.arguments, 4))
        delta({ tool_calls: [{ index, function: { arguments: args } }] });
    });
    delta({}, finishReason(turn));
    if (includeUsage) chunk([], { usage: chatUsage(usage) });
    x.res.write("data: [DONE]\n\n");
    x.res.end();
  };

  // ---- responses ----

  interface OutputIds {
    message?: string;
    calls: { id: string; callId: string }[];
  }
  const responseIds = (turn: FakeTurn): OutputIds => ({
    message: turn.text ? makeId("msg_", core.nextId(), 50) : undefined,
    calls: (turn.toolCalls ?? []).map(() => ({
      id: makeId("fc_", core.nextId(), 50),
      callId: makeId("call_", core.nextId()),
    })),
  });
  const messageItem = (id: string, text: string, status: string) => ({
    id,
    type: "message",
    status,
    content: status === "in_progress" ? [] : [outputText(text)],
    role: "assistant",
  });
  const outputText = (text: string) => ({
    type: "output_text",
    annotations: [],
    logprobs: [],
    text,
  });
  const callItem = (
    ids: { id: string; callId: string },
    name: string,
    args: string,
    status: string,
  ) => ({
    id: ids.id,
    type: "function_call",
    status,
    arguments: args,
    call_id: ids.callId,
    name,
  });
  const outputItems = (turn: FakeTurn, ids: OutputIds) => {
    const items: Record<string, unknown>[] = [];
    if (turn.text && ids.message) items.push(messageItem(ids.message, turn.text, "completed"));
    (turn.toolCalls ?? []).forEach((call, i) => {
      items.push(callItem(ids.calls[i]!, call.name, JSON.stringify(call.arguments), "completed"));
    });
    return items;
  };
  const responseUsage = (usage: Usage) => ({
    input_tokens: usage.input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.input + usage.output,
  });
  let responseCount = 0;
  const responseObject = (
    turn: FakeTurn,
    body: Record<string, unknown>,
    usage: Usage,
    status: "in_progress" | "completed",
    ids: OutputIds,
    id = makeId("resp_", ++responseCount, 50),
    createdAt = Math.floor(Date.now() / 1000),
  ) => ({
    id,
    object: "response",
    created_at: createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: null,
    model: body.model,
    output: status === "completed" ? outputItems(turn, ids) : [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: null, summary: null, ...(isRecord(body.reasoning) ? body.reasoning : {}) },
    safety_identifier: null,
    service_tier: "default",
    store: body.store ?? true,
    temperature: 1,
    text: { format: { type: "text" }, verbosity: "medium" },
    tool_choice: body.tool_choice ?? "auto",
    tools: body.tools ?? [],
    top_logprobs: 0,
    top_p: 1,
    truncation: "disabled",
    usage: status === "completed" ? responseUsage(usage) : null,
    user: null,
    metadata: body.metadata ?? {},
  });

  const streamResponse = (
    x: Exchange,
    turn: FakeTurn,
    body: Record<string, unknown>,
    usage: Usage,
    headers: Record<string, string>,
  ): void => {
    startSse(x.res, headers);
    let sequence = 0;
    const send = (type: string, data: Record<string, unknown>) =>
      x.res.write(
        `event: ${type}\ndata: ${JSON.stringify({ type, ...data, sequence_number: sequence++ })}\n\n`,
      );
    const ids = responseIds(turn);
    const id = makeId("resp_", ++responseCount, 50);
    const createdAt = Math.floor(Date.now() / 1000);
    const snapshot = (status: "in_progress" | "completed") =>
      responseObject(turn, body, usage, status, ids, id, createdAt);
    send("response.created", { response: snapshot("in_progress") });
    send("response.in_progress", { response: snapshot("in_progress") });
    let outputIndex = 0;
    if (turn.text && ids.message) {
      const itemId = ids.message;
      const at = { item_id: itemId, output_index: outputIndex, content_index: 0 };
      send("response.output_item.added", {
        output_index: outputIndex,
        item: messageItem(itemId, turn.text, "in_progress"),
      });
      send("response.content_part.added", { ...at, part: outputText("") });
      for (const delta of textPieces(turn.text))
        send("response.output_text.delta", { ...at, delta, logprobs: [] });
      send("response.output_text.done", { ...at, text: turn.text, logprobs: [] });
      send("response.content_part.done", { ...at, part: outputText(turn.text) });
      send("response.output_item.done", {
        output_index: outputIndex,
        item: messageItem(itemId, turn.text, "completed"),
      });
      outputIndex++;
    }
    (turn.toolCalls ?? []).forEach((call, i) => {
      const callIds = ids.calls[i]!;
      const args = JSON.stringify(call.arguments);
      send("response.output_item.added", {
        output_index: outputIndex,
        item: callItem(callIds, call.name, "", "in_progress"),
      });
      for (const delta of pieces(args, 4))
        send("response.function_call_arguments.delta", {
          item_id: callIds.id,
          output_index: outputIndex,
          delta,
        });
      send("response.function_call_arguments.done", {
        item_id: callIds.id,
        output_index: outputIndex,
        name: call.name,
        arguments: args,
      });
      send("response.output_item.done", {
        output_index: outputIndex,
        item: callItem(callIds, call.name, args, "completed"),
      });
      outputIndex++;
    });
    send("response.completed", { response: snapshot("completed") });
    x.res.end();
  };

  return serve(core, handle, o.prefix);
}

export function startFakeOpenAI(o: { apiKey: string; script: FakeScript }): Promise<FakeProvider> {
  return startChatFake({ flavour: "openai", apiKey: o.apiKey, script: o.script, prefix: "/v1" });
}

export function startFakeOpenAICompatible(o: {
  apiKey?: string;
  script: FakeScript;
  /** default "/api/v1", like OpenRouter */
  pathPrefix?: string;
  /** ids listed by GET <prefix>/models; default ["fake-model"] */
  models?: string[];
}): Promise<FakeProvider> {
  const prefix = (o.pathPrefix ?? "/api/v1").replace(/\/+$/, "");
  return startChatFake({
    flavour: "compatible",
    apiKey: o.apiKey,
    script: o.script,
    prefix,
    models: o.models,
  });
}

// ---- helpers for scripts ----

/** Text of the latest `tool` message in a Chat Completions body. */
export function chatLastToolResult(body: unknown): string | undefined {
  if (!isRecord(body) || !Array.isArray(body.messages)) return undefined;
  for (let i = body.messages.length - 1; i >= 0; i--) {
    const m = body.messages[i];
    if (isRecord(m) && m.role === "tool") return textOf(m.content) ?? "";
  }
  return undefined;
}

/** Names of the function tools a Chat Completions body offers. */
export function chatToolNames(body: unknown): string[] {
  if (!isRecord(body) || !Array.isArray(body.tools)) return [];
  return body.tools
    .map((t) =>
      isRecord(t) && isRecord(t.function) ? t.function.name : isRecord(t) ? t.name : undefined,
    )
    .filter((n): n is string => typeof n === "string");
}

/** Output of the latest function_call_output item in a Responses body. */
export function responsesLastToolResult(body: unknown): string | undefined {
  if (!isRecord(body) || !Array.isArray(body.input)) return undefined;
  for (let i = body.input.length - 1; i >= 0; i--) {
    const item = body.input[i];
    if (
      isRecord(item) &&
      (item.type === "function_call_output" || item.type === "custom_tool_call_output")
    )
      return textOf(item.output) ?? "";
  }
  return undefined;
}

/** Names of the tools a Responses body offers (function and custom tools). */
export function responsesToolNames(body: unknown): string[] {
  if (!isRecord(body) || !Array.isArray(body.tools)) return [];
  return body.tools
    .map((t) => (isRecord(t) ? t.name : undefined))
    .filter((n): n is string => typeof n === "string");
}
