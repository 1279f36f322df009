import type { SSEEvent } from "../sse.ts";
import { anthropicClientRequest } from "./client-anthropic-request.ts";
import { anthropicStreamEncoder } from "./client-anthropic-stream.ts";
import { chatClientRequest } from "./client-chat-request.ts";
import { chatStreamEncoder } from "./client-chat-stream.ts";
import { geminiClientRequest } from "./client-gemini-request.ts";
import { geminiStreamEncoder } from "./client-gemini-stream.ts";
import { clientReply } from "./client-replies.ts";
import { responsesClientRequest } from "./client-responses-request.ts";
import { responsesStreamEncoder } from "./client-responses-stream.ts";
import type {
  NeutralRequest,
  ProtocolName,
  StreamDecoder,
  StreamEncoder,
  TranslateOptions,
  Translation,
} from "./types.ts";
import { anthropicUpstreamBody } from "./upstream-anthropic-request.ts";
import { anthropicStreamDecoder } from "./upstream-anthropic-stream.ts";
import { chatUpstreamBody } from "./upstream-chat-request.ts";
import { chatStreamDecoder } from "./upstream-chat-stream.ts";
import { clientErrorBody, readUpstreamError } from "./upstream-error.ts";
import { geminiUpstreamBody, geminiUpstreamPath } from "./upstream-gemini-request.ts";
import { geminiStreamDecoder } from "./upstream-gemini-stream.ts";
import { readUpstreamReply } from "./upstream-replies.ts";

const CLIENTS: readonly ProtocolName[] = [
  "anthropic-messages",
  "openai-chat",
  "openai-responses",
  "gemini",
];
// No Responses upstream: every provider nightshift targets also speaks Chat Completions, which
// carries all the Responses features a stateless translation could keep.
const UPSTREAMS: readonly ProtocolName[] = ["openai-chat", "anthropic-messages", "gemini"];

/** Whether a client speaking `client` can be served by a provider speaking only `upstream`. */
export function canTranslate(client: ProtocolName, upstream: ProtocolName): boolean {
  return client !== upstream && CLIENTS.includes(client) && UPSTREAMS.includes(upstream);
}

function neutralRequest(client: ProtocolName, body: unknown, clientPath: string): NeutralRequest {
  if (client === "anthropic-messages") return anthropicClientRequest(body);
  if (client === "openai-responses") return responsesClientRequest(body);
  if (client === "gemini") return geminiClientRequest(body, clientPath);
  return chatClientRequest(body);
}

function upstreamRequest(
  upstream: ProtocolName,
  request: NeutralRequest,
  options: TranslateOptions,
) {
  if (upstream === "anthropic-messages") {
    return { body: anthropicUpstreamBody(request, options), path: "/v1/messages" };
  }
  if (upstream === "gemini") {
    return { body: geminiUpstreamBody(request), path: geminiUpstreamPath(options, request.stream) };
  }
  return { body: chatUpstreamBody(request, options), path: "/v1/chat/completions" };
}

function decoderFor(upstream: ProtocolName): StreamDecoder {
  if (upstream === "anthropic-messages") return anthropicStreamDecoder();
  if (upstream === "gemini") return geminiStreamDecoder();
  return chatStreamDecoder();
}

function encoderFor(client: ProtocolName, model: string, includeUsage: boolean): StreamEncoder {
  if (client === "anthropic-messages") return anthropicStreamEncoder(model);
  if (client === "openai-responses") return responsesStreamEncoder(model);
  if (client === "gemini") return geminiStreamEncoder(model);
  return chatStreamEncoder(model, includeUsage);
}

/**
 * The translation of one exchange between a `client` protocol and an `upstream` protocol, through
 * the neutral (Chat Completions shaped) form. One Translation serves one client request: call
 * `request` first, since a Chat client's stream options decide whether its stream ends with usage.
 */
export function createTranslation(
  client: ProtocolName,
  upstream: ProtocolName,
  options: TranslateOptions,
): Translation {
  if (!canTranslate(client, upstream)) {
    throw new Error(`nightshift cannot translate ${client} requests for a ${upstream} upstream`);
  }
  let includeUsage = false;
  return {
    request(body, clientPath) {
      const neutral = neutralRequest(client, body, clientPath);
      includeUsage = neutral.includeUsage;
      return { ...upstreamRequest(upstream, neutral, options), stream: neutral.stream };
    },
    response: (upstreamBody) =>
      clientReply(client, readUpstreamReply(upstream, upstreamBody), options.clientModel),
    createStream() {
      const decoder = decoderFor(upstream);
      const encoder = encoderFor(client, options.clientModel, includeUsage);
      return {
        push: (event: SSEEvent) =>
          decoder
            .push(event)
            .map((delta) => encoder.push(delta))
            .join(""),
        end: () => encoder.close(),
      };
    },
    error: (status, upstreamText) =>
      clientErrorBody(client, readUpstreamError(status, upstreamText)),
  };
}
