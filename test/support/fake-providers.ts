// Fakes of the real model providers, for testing every provider path of nightshift against
// something that behaves like the service (SSE event order, auth, error bodies, rate-limit headers).
// They are written by hand from the vendors' public wire formats and import nothing from src/.
//
//   startFakeAnthropic        url http://127.0.0.1:P         POST /v1/messages, /v1/messages/count_tokens, HEAD|GET /
//   startFakeOpenAI           url http://127.0.0.1:P/v1      POST /v1/chat/completions, /v1/responses
//   startFakeGemini           url http://127.0.0.1:P         POST /v1beta/models/{m}:generateContent|:streamGenerateContent|:countTokens
//   startFakeOpenAICompatible url http://127.0.0.1:P<prefix> POST <prefix>/chat/completions, GET <prefix>/models
import {
  anthropicLastToolResult,
  anthropicLastUserText,
  anthropicToolNames,
} from "./fake-providers-anthropic.ts";
import { isRecord, type RecordedRequest, textOf } from "./fake-providers-common.ts";
import { geminiLastToolResult, geminiToolNames } from "./fake-providers-gemini.ts";
import {
  chatLastToolResult,
  chatToolNames,
  responsesLastToolResult,
  responsesToolNames,
} from "./fake-providers-openai.ts";

export {
  ANTHROPIC_VERSIONS,
  anthropicLastToolResult,
  anthropicLastUserText,
  anthropicToolNames,
  type FakeAnthropicOptions,
  startFakeAnthropic,
} from "./fake-providers-anthropic.ts";
export {
  estimateUsage,
  type FakeFailure,
  type FakeProvider,
  type FakeScript,
  type FakeToolCall,
  type FakeTurn,
  outputChars,
  type RecordedRequest,
} from "./fake-providers-common.ts";
export { geminiLastToolResult, geminiToolNames, startFakeGemini } from "./fake-providers-gemini.ts";
export {
  chatLastToolResult,
  chatToolNames,
  responsesLastToolResult,
  responsesToolNames,
  startFakeOpenAI,
  startFakeOpenAICompatible,
} from "./fake-providers-openai.ts";

export type WireProtocol = "anthropic" | "chat" | "responses" | "gemini" | "unknown";

/** Which protocol a recorded request speaks, from its path. */
export function protocolOf(request: RecordedRequest): WireProtocol {
  const path = request.path;
  if (path.endsWith("/v1/messages") || path.endsWith("/v1/messages/count_tokens"))
    return "anthropic";
  if (path.endsWith("/chat/completions")) return "chat";
  if (path.endsWith("/responses")) return "responses";
  if (/:(generateContent|streamGenerateContent|countTokens)$/.test(path)) return "gemini";
  return "unknown";
}

/**
 * Text of the latest tool result in the request, whatever its protocol: Anthropic's last
 * `tool_result` block, Chat's last `tool` message, Responses' last `function_call_output`,
 * Gemini's last `functionResponse` (its response.output/result/content string, else its JSON).
 * undefined when the request carries none.
 */
export function lastToolResult(request: RecordedRequest): string | undefined {
  switch (protocolOf(request)) {
    case "anthropic":
      return anthropicLastToolResult(request.body);
    case "chat":
      return chatLastToolResult(request.body);
    case "responses":
      return responsesLastToolResult(request.body);
    case "gemini":
      return geminiLastToolResult(request.body);
    default:
      return undefined;
  }
}

/** Names of the tools the request offers the model, whatever its protocol. */
export function toolNames(request: RecordedRequest): string[] {
  switch (protocolOf(request)) {
    case "anthropic":
      return anthropicToolNames(request.body);
    case "chat":
      return chatToolNames(request.body);
    case "responses":
      return responsesToolNames(request.body);
    case "gemini":
      return geminiToolNames(request.body);
    default:
      return [];
  }
}

/** Text of the latest user turn (tool results aside), whatever the protocol. */
export function lastUserText(request: RecordedRequest): string | undefined {
  const body = request.body;
  switch (protocolOf(request)) {
    case "anthropic":
      return anthropicLastUserText(body);
    case "chat": {
      if (!isRecord(body) || !Array.isArray(body.messages)) return undefined;
      const m = [...body.messages].reverse().find((m) => isRecord(m) && m.role === "user");
      return isRecord(m) ? textOf(m.content) : undefined;
    }
    case "responses": {
      if (!isRecord(body)) return undefined;
      if (typeof body.input === "string") return body.input;
      if (!Array.isArray(body.input)) return undefined;
      const m = [...body.input].reverse().find((i) => isRecord(i) && i.role === "user");
      return isRecord(m) ? textOf(m.content) : undefined;
    }
    case "gemini": {
      if (!isRecord(body) || !Array.isArray(body.contents)) return undefined;
      for (const c of [...body.contents].reverse()) {
        if (!isRecord(c) || c.role === "model" || !Array.isArray(c.parts)) continue;
        const text = c.parts
          .map((p) => (isRecord(p) && typeof p.text === "string" ? p.text : ""))
          .join("");
        if (text) return text;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}
