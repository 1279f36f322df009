import {
  type GeminiRequest,
  geminiToChat,
  parseGeminiRequest,
  requireGeminiCall,
} from "../gemini.ts";
import { MEDIA_FIX, untranslatable } from "./refuse.ts";
import type { NeutralRequest } from "./types.ts";
import { uniqueToolCallIds } from "./unique-tool-ids.ts";

const MEDIA = ["inlineData", "fileData"];
const BUILT_IN = ["executableCode", "codeExecutionResult"];

function check(request: GeminiRequest): void {
  request.contents.forEach((content, c) => {
    content.parts.forEach((part, p) => {
      const param = `contents[${c}].parts[${p}]`;
      for (const key of MEDIA) {
        if (part[key] !== undefined) throw untranslatable(`${param}.${key}`, key, MEDIA_FIX);
      }
      for (const key of BUILT_IN) {
        if (part[key] !== undefined) {
          throw untranslatable(
            `${param}.${key}`,
            key,
            "Gemini's code execution exists only at Google.",
          );
        }
      }
    });
  });
}

/** A generateContent request (Gemini CLI) in neutral terms; the path says the model and streaming. */
export function geminiClientRequest(body: unknown, clientPath: string): NeutralRequest {
  const call = requireGeminiCall(clientPath);
  const request = parseGeminiRequest(body);
  check(request);
  const chat = geminiToChat(request, call);
  const config = (request.generationConfig ?? {}) as { stopSequences?: unknown; topP?: unknown };
  const stop = Array.isArray(config.stopSequences)
    ? config.stopSequences.filter((s): s is string => typeof s === "string")
    : [];
  return {
    chat: { ...chat, messages: uniqueToolCallIds(chat.messages) },
    stream: call.stream,
    includeUsage: false,
    ...(stop.length ? { stop } : {}),
    ...(typeof config.topP === "number" ? { topP: config.topP } : {}),
  };
}
