import { anthropicMessagesWire } from "./anthropic-messages-wire.ts";
import { geminiWire } from "./gemini-wire.ts";
import { openAIChatWire } from "./openai-chat-wire.ts";
import { openAIResponsesWire } from "./openai-responses-wire.ts";
import type { WireProtocol } from "./wire.ts";

/** Every protocol nightshift serves and meters, so a server can mount them all in one loop. */
export const wireProtocols: readonly WireProtocol[] = [
  openAIChatWire,
  anthropicMessagesWire,
  openAIResponsesWire,
  geminiWire,
];

/** The protocol served at `path` (query string ignored, as Claude Code adds `?beta=true`). */
export function wireProtocolForPath(path: string): WireProtocol | undefined {
  const bare = path.split("?")[0] ?? "";
  return wireProtocols.find((protocol) =>
    protocol.servesPath ? protocol.servesPath(bare) : protocol.path === bare,
  );
}

/** The protocol of that name (every name the type allows has one). */
export function wireProtocolNamed(name: WireProtocol["name"]): WireProtocol {
  return wireProtocols.find((protocol) => protocol.name === name) as WireProtocol;
}
