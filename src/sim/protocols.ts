import {
  anthropicErrorBody,
  anthropicMessageEvents,
  anthropicMessageResponse,
  anthropicToChat,
  type ChatRequest,
  chatCompletionChunks,
  chatCompletionResponse,
  type FinishReason,
  geminiErrorBody,
  geminiResponse,
  geminiStreamChunks,
  geminiToChat,
  openAIErrorBody,
  ProtocolError,
  parseAnthropicRequest,
  parseChatRequest,
  parseGeminiRequest,
  parseResponsesRequest,
  requireGeminiCall,
  responsesEvents,
  responsesResponse,
  responsesToChat,
  type ToolCall,
  type Usage,
  type WireProtocol,
} from "../protocols/index.ts";

export type ProtocolName = WireProtocol["name"];
export const PROTOCOL_NAMES: readonly ProtocolName[] = [
  "openai-chat",
  "anthropic-messages",
  "openai-responses",
  "gemini",
];

/** One reply, ready to render in any protocol. */
export interface RenderInput {
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
  content: string | null;
  toolCalls: ToolCall[];
  usage: Usage;
  finishReason: FinishReason;
}

export interface OutgoingEvent {
  event?: string;
  data: unknown;
}

/** How the simulator reads and writes one wire protocol; everything in between is shared. */
export interface SimProtocol {
  name: ProtocolName;
  /** Prefixes of generated ids, as the real provider's look. */
  replyIdPrefix: string;
  toolCallIdPrefix: string;
  /** Hono route pattern, when not one fixed path (Gemini: the model is in the path). */
  route?: string;
  /** Validates the body and converts it to the neutral form policies see; `path` is the request's. */
  toNeutral(body: unknown, path: string): ChatRequest;
  json(reply: RenderInput, request: ChatRequest): unknown;
  events(reply: RenderInput, request: ChatRequest): OutgoingEvent[];
  errorBody(status: number, message: string, code: string | null, param?: string | null): unknown;
}

const openAIError = (status: number, message: string, code: string | null, param?: string | null) =>
  openAIErrorBody(status, message, undefined, code, param);

export const chatProtocol: SimProtocol = {
  name: "openai-chat",
  replyIdPrefix: "chatcmpl-",
  toolCallIdPrefix: "call_",
  toNeutral: parseChatRequest,
  json: (reply) => chatCompletionResponse(reply),
  events: (reply, request) =>
    chatCompletionChunks({
      ...reply,
      includeUsage: request.stream_options?.include_usage === true,
    }).map((data) => ({ data })),
  errorBody: openAIError,
};

export const anthropicProtocol: SimProtocol = {
  name: "anthropic-messages",
  replyIdPrefix: "msg_",
  toolCallIdPrefix: "toolu_",
  toNeutral: (body) => anthropicToChat(parseAnthropicRequest(body)),
  json: (reply) => anthropicMessageResponse(reply),
  events: (reply) => anthropicMessageEvents(reply),
  errorBody: (status, message) => anthropicErrorBody(status, message),
};

export const responsesProtocol: SimProtocol = {
  name: "openai-responses",
  replyIdPrefix: "resp_",
  toolCallIdPrefix: "call_",
  toNeutral(body) {
    const request = parseResponsesRequest(body);
    // The simulator keeps no conversations, so it cannot resume one by id; the real API can, hence
    // this is refused here rather than in the shared parser the gateway uses.
    if (request.previous_response_id) {
      throw new ProtocolError(
        "unsupported_parameter",
        "The simulator keeps no state: send the whole conversation in `input` instead of previous_response_id",
        "previous_response_id",
      );
    }
    const neutral = responsesToChat(request);
    if (!neutral.messages.some((m) => m.role === "user" || m.role === "tool")) {
      throw new ProtocolError(
        "invalid_request",
        "Invalid responses request: input: is required (a string or items with a user message)",
        "input",
      );
    }
    return neutral;
  },
  json: (reply) => responsesResponse({ ...reply, createdAt: reply.created }),
  events: (reply) => responsesEvents({ ...reply, createdAt: reply.created }),
  errorBody: openAIError,
};

export const geminiProtocol: SimProtocol = {
  name: "gemini",
  route: "/v1beta/models/*",
  replyIdPrefix: "",
  toolCallIdPrefix: "call_",
  toNeutral(body, path) {
    const call = requireGeminiCall(path);
    const neutral = geminiToChat(parseGeminiRequest(body), call);
    if (!neutral.messages.some((m) => m.role === "user" || m.role === "tool")) {
      throw new ProtocolError(
        "invalid_request",
        "Invalid Gemini generateContent request: contents: needs a user turn",
        "contents",
      );
    }
    return neutral;
  },
  json: (reply) => geminiResponse(reply),
  // Gemini's SSE has no event names: every chunk is a `data:` line holding a partial response.
  events: (reply) => geminiStreamChunks(reply).map((data) => ({ data })),
  errorBody: (status, message) => geminiErrorBody(status, message),
};
