import { describe, expect, it } from "vitest";
import {
  countTokens,
  geminiToChat,
  parseGeminiRequest,
  parseSSE,
  promptText,
  requireGeminiCall,
} from "../../src/protocols/index.ts";
import { createSimulatorApp, createStats, scriptedPolicy } from "../../src/sim/index.ts";

const policy = scriptedPolicy([
  { content: "Let me look.", toolCalls: [{ name: "lookup", arguments: { city: "Oslo" } }] },
  { content: "It is sunny in Oslo, 21 degrees." },
]);

const first = {
  contents: [{ role: "user", parts: [{ text: "Weather in Oslo?" }] }],
  tools: [{ functionDeclarations: [{ name: "lookup", parameters: { type: "object" } }] }],
};

function post(app: ReturnType<typeof createSimulatorApp>, path: string, body: unknown) {
  return app.fetch(
    new Request(`http://sim${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": "any" },
      body: JSON.stringify(body),
    }),
  );
}

describe("the simulator on the Gemini API", () => {
  it("serves generateContent with usage counted from the actual text", async () => {
    const stats = createStats();
    const app = createSimulatorApp({ policy, stats });
    const path = "/v1beta/models/sim-demo:generateContent";
    const res = await post(app, path, first);
    expect(res.status).toBe(200);
    const json = (await res.json()) as {
      candidates: { content: { parts: { text?: string; functionCall?: { name: string } }[] } }[];
      usageMetadata: { promptTokenCount: number; candidatesTokenCount: number };
    };
    const parts = json.candidates[0]!.content.parts;
    expect(parts[0]).toEqual({ text: "Let me look." });
    expect(parts[1]?.functionCall).toMatchObject({ name: "lookup", args: { city: "Oslo" } });
    const neutral = geminiToChat(parseGeminiRequest(first), requireGeminiCall(path));
    expect(json.usageMetadata.promptTokenCount).toBe(countTokens(promptText(neutral)));
    expect(json.usageMetadata.candidatesTokenCount).toBe(
      countTokens(`Let me look.\nlookup\n{"city":"Oslo"}`),
    );
    expect(stats.byProtocol.gemini).toEqual({
      requests: 1,
      promptTokens: json.usageMetadata.promptTokenCount,
      completionTokens: json.usageMetadata.candidatesTokenCount,
    });
  });

  it("streams streamGenerateContent?alt=sse as data-only partial responses, usage in the last", async () => {
    const stats = createStats();
    const app = createSimulatorApp({ policy, stats });
    const second = {
      contents: [
        ...first.contents,
        { role: "model", parts: [{ functionCall: { name: "lookup", args: { city: "Oslo" } } }] },
        {
          role: "user",
          parts: [{ functionResponse: { name: "lookup", response: { output: "sunny, 21" } } }],
        },
      ],
    };
    const res = await post(app, "/v1beta/models/sim-demo:streamGenerateContent?alt=sse", second);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = parseSSE(await res.text());
    expect(events.every((e) => e.event === undefined)).toBe(true);
    const chunks = events.map((e) => JSON.parse(e.data));
    const text = chunks
      .flatMap((c) => c.candidates[0].content.parts)
      .map((p: { text?: string }) => p.text ?? "")
      .join("");
    expect(text).toBe("It is sunny in Oslo, 21 degrees.");
    expect(chunks.at(-1).usageMetadata.candidatesTokenCount).toBe(countTokens(text));
    expect(stats.byProtocol.gemini.completionTokens).toBe(countTokens(text));
  });

  it("answers a bad request in Google's error shape", async () => {
    const app = createSimulatorApp({ policy });
    const res = await post(app, "/v1beta/models/sim-demo:generateContent", { contents: [] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT" } });
    const other = await post(app, "/v1beta/models/sim-demo:countTokens", first);
    expect(other.status).toBe(400);
  });
});
