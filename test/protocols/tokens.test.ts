import { describe, expect, it } from "vitest";
import { countTokens, parseChatRequest, usageFor } from "../../src/protocols/index.ts";

const request = (text: string, extra: Record<string, unknown> = {}) =>
  parseChatRequest({ model: "m", messages: [{ role: "user", content: text }], ...extra });

describe("token counting", () => {
  it("is ceil(chars / 4), at least 1 for non-empty text", () => {
    expect(countTokens("")).toBe(0);
    expect(countTokens("a")).toBe(1);
    expect(countTokens("abcd")).toBe(1);
    expect(countTokens("abcde")).toBe(2);
    expect(countTokens("é".repeat(8))).toBe(2);
  });

  it("derives prompt tokens from all message text and tool definitions", () => {
    const short = usageFor(request("hi"), { content: "ok" });
    const long = usageFor(request("hi ".repeat(100)), { content: "ok" });
    expect(long.prompt_tokens).toBeGreaterThan(short.prompt_tokens);
    const tool = { type: "function", function: { name: "search", description: "x".repeat(200) } };
    const withTools = usageFor(request("hi", { tools: [tool] }), { content: "ok" });
    expect(withTools.prompt_tokens).toBeGreaterThan(short.prompt_tokens + 40);
  });

  it("derives completion tokens from content and tool calls", () => {
    const base = usageFor(request("hi"), { content: "ok" });
    const longer = usageFor(request("hi"), { content: "ok ".repeat(50) });
    const withCall = usageFor(request("hi"), {
      content: "ok",
      toolCalls: [{ name: "write_file", arguments: JSON.stringify({ content: "y".repeat(100) }) }],
    });
    expect(longer.completion_tokens).toBeGreaterThan(base.completion_tokens);
    expect(withCall.completion_tokens).toBeGreaterThan(base.completion_tokens + 25);
    expect(withCall.total_tokens).toBe(withCall.prompt_tokens + withCall.completion_tokens);
  });
});
