export {
  type AnthropicContentBlock,
  type AnthropicCountTokensRequest,
  type AnthropicMessagesRequest,
  anthropicCountTokens,
  anthropicCountTokensRequestSchema,
  anthropicMessagesRequestSchema,
  anthropicToChat,
  parseAnthropicCountTokensRequest,
  parseAnthropicRequest,
} from "./anthropic-messages.ts";
export {
  type AnthropicMessageResponse,
  type AnthropicReplyBlock,
  type AnthropicReplyInput,
  type AnthropicStopReason,
  type AnthropicStreamEvent,
  type AnthropicUsage,
  type AssembledAnthropicReply,
  anthropicMessageEvents,
  anthropicMessageResponse,
  anthropicStopReason,
  anthropicUsage,
  assembleAnthropicEvents,
} from "./anthropic-messages-reply.ts";
export { anthropicMessagesWire } from "./anthropic-messages-wire.ts";
export { anthropicKey, bearerKey } from "./api-keys.ts";
export {
  type AnthropicErrorBody,
  anthropicErrorBody,
  type OpenAIErrorBody,
  openAIErrorBody,
  ProtocolError,
} from "./errors.ts";
export {
  type GeminiAction,
  type GeminiCall,
  type GeminiErrorBody,
  type GeminiFinishReason,
  type GeminiReplyInput,
  type GeminiReplyPart,
  type GeminiRequest,
  type GeminiResponse,
  type GeminiUsageMetadata,
  geminiCallOf,
  geminiErrorBody,
  geminiFinishReason,
  geminiKey,
  geminiRequestSchema,
  geminiResponse,
  geminiStreamChunks,
  geminiToChat,
  geminiUsage,
  parseGeminiRequest,
  requireGeminiCall,
} from "./gemini.ts";
export { geminiWire } from "./gemini-wire.ts";
export {
  type AssembledReply,
  assembleChunks,
  type ChatChunksInput,
  type ChatCompletionChunk,
  type ChatCompletionResponse,
  type ChatContent,
  type ChatMessage,
  type ChatReplyInput,
  type ChatRequest,
  type ChatStreamItem,
  type ChatToolDefinition,
  type ChunkToolCallDelta,
  chatCompletionChunks,
  chatCompletionResponse,
  chatRequestSchema,
  contentText,
  type FinishReason,
  parseChatRequest,
  type ToolCall,
  type Usage,
} from "./openai-chat.ts";
export { openAIChatWire } from "./openai-chat-wire.ts";
export {
  parseResponsesRequest,
  type ResponsesRequest,
  responsesRequestSchema,
  responsesToChat,
} from "./openai-responses.ts";
export {
  type ResponseObject,
  type ResponseStatus,
  type ResponsesFunctionCallItem,
  type ResponsesMessageItem,
  type ResponsesOutputItem,
  type ResponsesReplyInput,
  type ResponsesStreamEvent,
  type ResponsesUsage,
  responsesEvents,
  responsesResponse,
  responsesUsage,
} from "./openai-responses-reply.ts";
export { openAIResponsesWire } from "./openai-responses-wire.ts";
export { splitArguments, splitIntoPieces } from "./pieces.ts";
export { safeJson } from "./safe-json.ts";
export {
  decodeSSE,
  encodeSSE,
  eventsMentioning,
  parseSSE,
  SSEDecoder,
  type SSEEvent,
  type SSESource,
} from "./sse.ts";
export {
  completionText,
  countTokens,
  promptText,
  type ReplyForUsage,
  usageFor,
} from "./tokens.ts";
export * from "./translate/index.ts";
export type {
  HeaderReader,
  MeteredUsage,
  RequestFacts,
  StreamMeter,
  WireProtocol,
} from "./wire.ts";
export { wireProtocolForPath, wireProtocolNamed, wireProtocols } from "./wire-protocols.ts";
export { describeIssues, formatPath } from "./zod-issues.ts";
