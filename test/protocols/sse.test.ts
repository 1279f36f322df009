import { describe, expect, it } from "vitest";
import {
  decodeSSE,
  encodeSSE,
  eventsMentioning,
  parseSSE,
  SSEDecoder,
} from "../../src/protocols/index.ts";

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe("SSE", () => {
  it("encodes JSON and verbatim strings", () => {
    expect(encodeSSE({ a: 1 })).toBe('data: {"a":1}\n\n');
    expect(encodeSSE("[DONE]")).toBe("data: [DONE]\n\n");
    expect(encodeSSE("two\nlines", "note")).toBe("event: note\ndata: two\ndata: lines\n\n");
  });

  it("finds the events that mention a word as a full parse would, whatever the line endings", () => {
    const events = [
      { event: "message_start", data: '{"usage":{"input_tokens":3}}' },
      { data: '{"text":"no mention"}' },
      { data: 'first line\n{"usage":{"output_tokens":5}}' },
      { data: "[DONE]" },
    ];
    const lf = events.map((e) => encodeSSE(e.data, e.event)).join("");
    for (const text of [
      lf,
      lf.replaceAll("\n", "\r\n"),
      lf.replaceAll("\n", "\r"),
      `: hi\n${lf}`,
    ]) {
      const expected = parseSSE(text).filter((e) => e.data.includes('"usage'));
      expect(expected).toHaveLength(2);
      expect(eventsMentioning(text, '"usage')).toEqual(expected);
      // The first mention's event is found from the blank line before it, not from the start.
      const later = text.slice(text.indexOf('data: {"text'));
      expect(eventsMentioning(later, '"usage')).toEqual(expected.slice(1));
    }
    expect(eventsMentioning(lf.replaceAll("usage", "tokens"), '"usage')).toEqual([]);
  });

  it("round-trips through the decoder, including multi-line data and comments", () => {
    const text = `: keep-alive\n${encodeSSE("two\nlines", "note")}${encodeSSE({ b: 2 })}data: [DONE]`;
    expect(parseSSE(text)).toEqual([
      { event: "note", data: "two\nlines" },
      { data: '{"b":2}' },
      { data: "[DONE]" },
    ]);
  });

  it("decodes a byte stream split at arbitrary points, even inside a multibyte character", async () => {
    const text = encodeSSE({ word: "naïve – ok" }) + encodeSSE("[DONE]");
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
        controller.close();
      },
    });
    const events = await collect(decodeSSE(stream));
    expect(events.map((e) => e.data)).toEqual(['{"word":"naïve – ok"}', "[DONE]"]);
  });

  it("handles CRLF line endings fed one character at a time", () => {
    const decoder = new SSEDecoder();
    const events = [..."data: x\r\n\r\ndata: y\r\n\r\n"].flatMap((ch) => decoder.push(ch));
    expect([...events, ...decoder.flush()].map((e) => e.data)).toEqual(["x", "y"]);
  });
});
