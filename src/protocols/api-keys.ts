import type { HeaderReader } from "./wire.ts";

/** `Authorization: Bearer <key>`, as OpenAI clients (and ANTHROPIC_AUTH_TOKEN users) send it. */
export function bearerKey(headers: HeaderReader): string | undefined {
  const value = headers.get("authorization");
  const match = value ? /^Bearer\s+(.+)$/i.exec(value) : null;
  return match?.[1]?.trim() || undefined;
}

/** Anthropic clients send `x-api-key`; Claude Code with ANTHROPIC_AUTH_TOKEN sends a Bearer token. */
export function anthropicKey(headers: HeaderReader): string | undefined {
  return headers.get("x-api-key")?.trim() || bearerKey(headers);
}
