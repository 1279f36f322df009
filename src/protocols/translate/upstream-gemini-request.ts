import { type ChatMessage, type ChatRequest, contentText } from "../openai-chat.ts";
import { safeJson } from "../safe-json.ts";
import { splitSystem } from "./system-prompt.ts";
import type { NeutralRequest, TranslateOptions } from "./types.ts";

type Part = Record<string, unknown>;
interface Content {
  role: "user" | "model";
  parts: Part[];
}

/**
 * Gemini 3 refuses a function call in history without the thought signature it issued; calls that
 * another provider made have none. Google documents this value for exactly that case (history
 * from elsewhere), and Gemini CLI uses it the same way.
 */
export const SYNTHETIC_THOUGHT_SIGNATURE = "skip_thought_signature_validator";

function args(text: string): Record<string, unknown> {
  const parsed = safeJson(text);
  return parsed && typeof parsed === "object" && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : {};
}

const textParts = (text: string): Part[] => (text === "" ? [] : [{ text }]);

// Gemini pairs a response with its call by name only, so results need the name of the call.
function callNames(messages: readonly ChatMessage[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of messages) {
    if (m.role !== "assistant") continue;
    for (const call of m.tool_calls ?? []) names.set(call.id, call.function.name);
  }
  return names;
}

function partsOf(message: ChatMessage, names: Map<string, string>): Part[] {
  if (message.role === "tool") {
    const name = names.get(message.tool_call_id) ?? message.tool_call_id;
    return [{ functionResponse: { name, response: { output: contentText(message.content) } } }];
  }
  const parts = textParts(contentText(message.content));
  if (message.role !== "assistant") return parts;
  (message.tool_calls ?? []).forEach((call, i) => {
    const functionCall = { name: call.function.name, args: args(call.function.arguments) };
    parts.push(
      i === 0 ? { functionCall, thoughtSignature: SYNTHETIC_THOUGHT_SIGNATURE } : { functionCall },
    );
  });
  return parts;
}

function contentsOf(messages: readonly ChatMessage[]): Content[] {
  const names = callNames(messages);
  const contents: Content[] = [];
  for (const message of messages) {
    const role = message.role === "assistant" ? "model" : "user";
    const parts = partsOf(message, names);
    if (parts.length === 0) continue;
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  }
  return contents;
}

/**
 * parametersJsonSchema takes full JSON Schema (Gemini CLI sends it), unlike `parameters`' OpenAPI
 * subset that refuses additionalProperties, $ref and the like; only the meta-schema key goes.
 */
function schema(parameters: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _meta, ...rest } = parameters;
  return rest;
}

function tools(chat: ChatRequest) {
  const declarations = (chat.tools ?? []).map((tool) => ({
    name: tool.function.name,
    ...(tool.function.description ? { description: tool.function.description } : {}),
    ...(tool.function.parameters ? { parametersJsonSchema: schema(tool.function.parameters) } : {}),
  }));
  return declarations.length ? [{ functionDeclarations: declarations }] : undefined;
}

function toolConfig(choice: ChatRequest["tool_choice"]) {
  if (choice === undefined) return undefined;
  if (typeof choice === "object") {
    return { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.function.name] } };
  }
  const mode = choice === "required" ? "ANY" : choice === "none" ? "NONE" : "AUTO";
  return { functionCallingConfig: { mode } };
}

function generationConfig(request: NeutralRequest) {
  const { chat } = request;
  const limit = chat.max_completion_tokens ?? chat.max_tokens;
  const config = {
    ...(limit ? { maxOutputTokens: limit } : {}),
    ...(chat.temperature != null ? { temperature: chat.temperature } : {}),
    ...(request.topP !== undefined ? { topP: request.topP } : {}),
    ...(request.stop ? { stopSequences: request.stop } : {}),
  };
  return Object.keys(config).length ? config : undefined;
}

/** The generateContent body for a neutral request. */
export function geminiUpstreamBody(request: NeutralRequest): Record<string, unknown> {
  const { system, rest } = splitSystem(request.chat.messages);
  const declared = tools(request.chat);
  const config = declared ? toolConfig(request.chat.tool_choice) : undefined;
  const generation = generationConfig(request);
  return {
    ...(system ? { systemInstruction: { parts: [{ text: system }] } } : {}),
    contents: contentsOf(rest),
    ...(declared ? { tools: declared } : {}),
    ...(config ? { toolConfig: config } : {}),
    ...(generation ? { generationConfig: generation } : {}),
  };
}

/** The upstream path: the model and whether to stream are in it. */
export function geminiUpstreamPath(options: TranslateOptions, stream: boolean): string {
  const model = encodeURIComponent(options.upstreamModel.replace(/^models\//, ""));
  return stream
    ? `/v1beta/models/${model}:streamGenerateContent?alt=sse`
    : `/v1beta/models/${model}:generateContent`;
}
