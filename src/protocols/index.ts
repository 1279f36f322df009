export { type OpenAIErrorBody, openAIErrorBody, ProtocolError } from "./errors.ts";
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
  splitIntoPieces,
  type ToolCall,
  type Usage,
} from "./openai-chat.ts";
export { bearerKey, openAIChatWire, safeJson } from "./openai-chat-wire.ts";
export {
  decodeSSE,
  encodeSSE,
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
export type { MeteredUsage, RequestFacts, StreamMeter, WireProtocol } from "./wire.ts";
