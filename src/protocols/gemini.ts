import { z } from "zod";
import { ProtocolError } from "./errors.ts";
import type {
  ChatMessage,
  ChatRequest,
  ChatToolDefinition,
  FinishReason,
  ToolCall,
  Usage,
} from "./openai-chat.ts";
import { splitIntoPieces } from "./pieces.ts";
import { safeJson } from "./safe-json.ts";
import type { HeaderReader } from "./wire.ts";
import { parseOrThrow } from "./zod-issues.ts";

// Google's Gemini API (generativelanguage.googleapis.com), as Gemini CLI speaks it:
// POST /v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse. Unlike the other
// protocols the model and whether to stream are in the path, not the body.

/** The actions nightshift serves; countTokens and embeddings are not model replies. */
export type GeminiAction = "generateContent" | "streamGenerateContent";

export interface GeminiCall {
  model: string;
  action: GeminiAction;
  stream: boolean;
}

const CALL_PATH =
  /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

/** The model and action of a request path (query string ignored), or undefined if it is not one. */
export function geminiCallOf(path: string): GeminiCall | undefined {
  const bare = path.split("?")[0] ?? "";
  const match = CALL_PATH.exec(bare);
  if (!match) return undefined;
  const model = decodeURIComponent(match[2] ?? "");
  const action = match[3] as GeminiAction;
  return { model, action, stream: action === "streamGenerateContent" };
}

/** Like geminiCallOf, but throws the ProtocolError a client should see. */
export function requireGeminiCall(path: string | undefined): GeminiCall {
  const call = path === undefined ? undefined : geminiCallOf(path);
  if (!call) {
    throw new ProtocolError(
      "invalid_request",
      `Invalid Gemini request path ${path ?? "(none)"}: expected /v1beta/models/{model}:generateContent or :streamGenerateContent`,
      "path",
    );
  }
  return call;
}

// Loose objects: clients send thought signatures, inline data, safety settings, ... which a proxy
// forwards untouched; only the fields nightshift reads are checked.
const partSchema = z
  .looseObject({
    text: z.unknown().optional(),
    thought: z.boolean().nullish(),
    functionCall: z
      .looseObject({
        name: z.string().min(1),
        args: z.record(z.string(), z.unknown()).nullish(),
        id: z.string().nullish(),
      })
      .optional(),
    functionResponse: z
      .looseObject({
        name: z.string().min(1),
        response: z.record(z.string(), z.unknown()).nullish(),
        id: z.string().nullish(),
      })
      .optional(),
  })
  .superRefine((part, ctx) => {
    if (part.text !== undefined && typeof part.text !== "string") {
      ctx.addIssue({ code: "custom", path: ["text"], message: "text parts need a string `text`" });
    }
  });

const contentSchema = z.looseObject({
  role: z.string().nullish(),
  parts: z.array(partSchema),
});

const functionDeclarationSchema = z.looseObject({
  name: z.string().min(1),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  parametersJsonSchema: z.record(z.string(), z.unknown()).nullish(),
});

export const geminiRequestSchema = z.looseObject({
  contents: z.array(contentSchema).min(1),
  systemInstruction: z
    .union([z.string(), z.looseObject({ parts: z.array(partSchema) })], {
      error: "must be a string or a content with parts",
    })
    .nullish(),
  tools: z
    .array(z.looseObject({ functionDeclarations: z.array(functionDeclarationSchema).nullish() }))
    .nullish(),
  toolConfig: z
    .looseObject({
      functionCallingConfig: z
        .looseObject({
          mode: z.string().nullish(),
          allowedFunctionNames: z.array(z.string()).nullish(),
        })
        .nullish(),
    })
    .nullish(),
  generationConfig: z
    .looseObject({
      maxOutputTokens: z.number().int().positive().nullish(),
      temperature: z.number().min(0).max(2).nullish(),
    })
    .nullish(),
});

export type GeminiRequest = z.infer<typeof geminiRequestSchema>;
export type GeminiPart = z.infer<typeof partSchema>;

/** Validates a Gemini generateContent body; throws ProtocolError("invalid_request") naming the field. */
export function parseGeminiRequest(body: unknown): GeminiRequest {
  return parseOrThrow(geminiRequestSchema, body, "Gemini generateContent request");
}

function partsText(parts: readonly GeminiPart[]): string {
  // Thought summaries are the model's private reasoning, not what it said.
  return parts
    .filter((part) => part.thought !== true && typeof part.text === "string")
    .map((part) => part.text as string)
    .join("");
}

/** A function response's text as a tool result: its `output` (or `error`) string, else the JSON. */
function responseText(response: Record<string, unknown> | null | undefined): string {
  if (!response) return "";
  for (const key of ["output", "error"]) {
    if (typeof response[key] === "string" && Object.keys(response).length === 1) {
      return response[key] as string;
    }
  }
  return JSON.stringify(response);
}

function toolDefinitions(tools: GeminiRequest["tools"]): ChatToolDefinition[] {
  return (tools ?? []).flatMap((tool) =>
    (tool.functionDeclarations ?? []).map((fn) => {
      const parameters = fn.parametersJsonSchema ?? fn.parameters;
      return {
        type: "function" as const,
        function: {
          name: fn.name,
          ...(fn.description ? { description: fn.description } : {}),
          ...(parameters ? { parameters } : {}),
        },
      };
    }),
  );
}

function toolChoice(config: GeminiRequest["toolConfig"]): ChatRequest["tool_choice"] {
  const fc = config?.functionCallingConfig;
  const mode = fc?.mode?.toUpperCase();
  if (mode === "NONE") return "none";
  if (mode === "AUTO") return "auto";
  if (mode === "ANY") {
    const only = fc?.allowedFunctionNames;
    return only?.length === 1 && only[0]
      ? { type: "function", function: { name: only[0] } }
      : "required";
  }
  return undefined;
}

/**
 * The neutral (Chat Completions shaped) form: systemInstruction becomes a system message, a model
 * content ONE assistant message (text plus functionCall parts as tool_calls, so the turn count
 * equals the number of model replies), a user content its functionResponse parts as tool messages
 * followed by its text as a user message. A call without an id is paired with its response by name.
 */
export function geminiToChat(request: GeminiRequest, call: GeminiCall): ChatRequest {
  const messages: ChatMessage[] = [];
  const system =
    typeof request.systemInstruction === "string"
      ? request.systemInstruction
      : request.systemInstruction
        ? partsText(request.systemInstruction.parts)
        : "";
  if (system) messages.push({ role: "system", content: system });
  for (const content of request.contents) {
    if (content.role === "model") {
      const calls = content.parts
        .map((part) => part.functionCall)
        .filter((fc) => fc !== undefined)
        .map((fc) => ({
          id: fc.id ?? fc.name,
          type: "function" as const,
          function: { name: fc.name, arguments: JSON.stringify(fc.args ?? {}) },
        }));
      const text = partsText(content.parts);
      messages.push({
        role: "assistant",
        content: text === "" && calls.length > 0 ? null : text,
        ...(calls.length > 0 ? { tool_calls: calls } : {}),
      });
      continue;
    }
    for (const part of content.parts) {
      const fr = part.functionResponse;
      if (fr) {
        messages.push({
          role: "tool",
          tool_call_id: fr.id ?? fr.name,
          content: responseText(fr.response),
        });
      }
    }
    const text = partsText(content.parts);
    if (text !== "") messages.push({ role: "user", content: text });
  }
  const tools = toolDefinitions(request.tools);
  const choice = toolChoice(request.toolConfig);
  const config = request.generationConfig;
  return {
    model: call.model,
    messages,
    ...(tools.length > 0 ? { tools } : {}),
    ...(choice !== undefined ? { tool_choice: choice } : {}),
    stream: call.stream,
    ...(config?.maxOutputTokens ? { max_completion_tokens: config.maxOutputTokens } : {}),
    ...(config?.temperature != null ? { temperature: config.temperature } : {}),
  };
}

// --- replies ---------------------------------------------------------------------------------

export type GeminiFinishReason = "STOP" | "MAX_TOKENS" | "SAFETY" | "OTHER";

export interface GeminiUsageMetadata {
  promptTokenCount: number;
  candidatesTokenCount: number;
  totalTokenCount: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
}

export interface GeminiReplyPart {
  text?: string;
  functionCall?: { id?: string; name: string; args: Record<string, unknown> };
}

export interface GeminiResponse {
  candidates: {
    content: { role: "model"; parts: GeminiReplyPart[] };
    finishReason?: GeminiFinishReason;
    index: number;
  }[];
  usageMetadata?: GeminiUsageMetadata;
  modelVersion: string;
  responseId: string;
}

export interface GeminiReplyInput {
  id: string;
  model: string;
  content: string | null;
  toolCalls?: ToolCall[];
  usage: Usage;
  finishReason?: FinishReason;
}

/** Tool calls use the STOP reason in Gemini; there is no separate "tool calls" reason. */
export function geminiFinishReason(reason: FinishReason | undefined): GeminiFinishReason {
  if (reason === "length") return "MAX_TOKENS";
  if (reason === "content_filter") return "SAFETY";
  return "STOP";
}

export function geminiUsage(usage: Usage): GeminiUsageMetadata {
  return {
    promptTokenCount: usage.prompt_tokens,
    candidatesTokenCount: usage.completion_tokens,
    totalTokenCount: usage.prompt_tokens + usage.completion_tokens,
  };
}

/** Gemini takes arguments as an object; a string that is not a JSON object is sent as `{}`. */
function callPart(call: ToolCall): GeminiReplyPart {
  const parsed = safeJson(call.arguments);
  const args =
    parsed && typeof parsed === "object" && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  return { functionCall: { id: call.id, name: call.name, args } };
}

function response(
  input: GeminiReplyInput,
  parts: GeminiReplyPart[],
  last: boolean,
): GeminiResponse {
  return {
    candidates: [
      {
        content: { role: "model", parts },
        ...(last ? { finishReason: geminiFinishReason(input.finishReason) } : {}),
        index: 0,
      },
    ],
    ...(last ? { usageMetadata: geminiUsage(input.usage) } : {}),
    modelVersion: input.model,
    responseId: input.id,
  };
}

/** A whole generateContent reply. */
export function geminiResponse(input: GeminiReplyInput): GeminiResponse {
  const parts: GeminiReplyPart[] = [];
  if (input.content) parts.push({ text: input.content });
  for (const call of input.toolCalls ?? []) parts.push(callPart(call));
  return response(input, parts, true);
}

/**
 * A streamGenerateContent reply as its SSE chunks, each a partial response: the text in pieces,
 * then each function call whole (Gemini never splits one), the last chunk with finishReason and
 * usageMetadata.
 */
export function geminiStreamChunks(input: GeminiReplyInput, maxPieces = 8): GeminiResponse[] {
  const parts: GeminiReplyPart[][] = [];
  if (input.content) {
    for (const piece of splitIntoPieces(input.content, maxPieces)) parts.push([{ text: piece }]);
  }
  for (const call of input.toolCalls ?? []) parts.push([callPart(call)]);
  if (parts.length === 0) parts.push([]);
  return parts.map((chunk, i) => response(input, chunk, i === parts.length - 1));
}

// --- errors ----------------------------------------------------------------------------------

export interface GeminiErrorBody {
  error: { code: number; message: string; status: string };
}

// The google.rpc.Code names Google APIs report per HTTP status.
function rpcStatus(status: number): string {
  if (status === 400) return "INVALID_ARGUMENT";
  if (status === 401) return "UNAUTHENTICATED";
  if (status === 403) return "PERMISSION_DENIED";
  if (status === 404) return "NOT_FOUND";
  if (status === 429) return "RESOURCE_EXHAUSTED";
  if (status === 503) return "UNAVAILABLE";
  if (status === 504) return "DEADLINE_EXCEEDED";
  if (status >= 500) return "INTERNAL";
  return "FAILED_PRECONDITION";
}

/** Google-style error JSON: `{error: {code, message, status}}`. */
export function geminiErrorBody(status: number, message: string): GeminiErrorBody {
  return { error: { code: status, message, status: rpcStatus(status) } };
}

/** The key as Gemini clients send it: the x-goog-api-key header, else `?key=` in the URL. */
export function geminiKey(headers: HeaderReader, url?: URL): string | undefined {
  return headers.get("x-goog-api-key")?.trim() || url?.searchParams.get("key")?.trim() || undefined;
}
