/** One server-sent event; `data` joins multi-line data fields with "\n", as the SSE spec says. */
export interface SSEEvent {
  event?: string;
  id?: string;
  data: string;
}

/** Encodes one SSE `data:` event; strings are sent verbatim (e.g. "[DONE]"), anything else as JSON. */
export function encodeSSE(data: unknown, event?: string): string {
  const text = typeof data === "string" ? data : JSON.stringify(data);
  const lines = text.split(/\r\n|\r|\n/).map((line) => `data: ${line}`);
  return `${event ? `event: ${event}\n` : ""}${lines.join("\n")}\n\n`;
}

/**
 * Incremental SSE parser: feed arbitrary text slices, get complete events back. A gateway can tee an
 * upstream stream through it without buffering the whole body.
 */
export class SSEDecoder {
  private buffer = "";
  private current: { event?: string; id?: string; data: string[] } = { data: [] };

  push(text: string): SSEEvent[] {
    this.buffer += text;
    const events: SSEEvent[] = [];
    const lines = this.buffer.split(/\r\n|\r|\n/);
    // The last element is an unfinished line (or "" after a newline); keep it for the next slice.
    this.buffer = lines.pop() ?? "";
    for (const line of lines) this.line(line, events);
    return events;
  }

  /** Ends the stream: a final event without a trailing blank line still counts. */
  flush(): SSEEvent[] {
    const events: SSEEvent[] = [];
    if (this.buffer !== "") this.line(this.buffer, events);
    this.buffer = "";
    this.line("", events);
    return events;
  }

  private line(line: string, events: SSEEvent[]): void {
    if (line === "") {
      if (this.current.data.length > 0) events.push(this.finish());
      this.current = { data: [] };
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const raw = colon === -1 ? "" : line.slice(colon + 1);
    const value = raw.startsWith(" ") ? raw.slice(1) : raw;
    if (field === "data") this.current.data.push(value);
    else if (field === "event") this.current.event = value;
    else if (field === "id") this.current.id = value;
  }

  private finish(): SSEEvent {
    const { event, id, data } = this.current;
    return { ...(event ? { event } : {}), ...(id ? { id } : {}), data: data.join("\n") };
  }
}

/**
 * The events of a complete SSE body whose data contains `needle`, parsed; the events before the
 * first mention are skipped unparsed. For a meter that looks only at the events mentioning usage
 * this gives what parsing the whole body would, for less work: the parse starts at the blank line
 * before the first mention (an event boundary, since no field's value holds a line break).
 */
export function eventsMentioning(text: string, needle: string): SSEEvent[] {
  const first = text.indexOf(needle);
  if (first < 0) return [];
  const start = Math.max(
    text.lastIndexOf("\n\n", first),
    text.lastIndexOf("\r\r", first),
    text.lastIndexOf("\r\n\r\n", first),
  );
  return parseSSE(start < 0 ? text : text.slice(start)).filter((event) =>
    event.data.includes(needle),
  );
}

/** Parses a complete SSE body. */
export function parseSSE(text: string): SSEEvent[] {
  const decoder = new SSEDecoder();
  return [...decoder.push(text), ...decoder.flush()];
}

export type SSESource = string | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

/** Yields events from a string, a web ReadableStream (fetch body) or a Node async iterable. */
export async function* decodeSSE(source: SSESource): AsyncGenerator<SSEEvent> {
  if (typeof source === "string") {
    yield* parseSSE(source);
    return;
  }
  const decoder = new SSEDecoder();
  const text = new TextDecoder();
  const iterable = isReadableStream(source) ? readableToIterable(source) : source;
  for await (const chunk of iterable) {
    yield* decoder.push(typeof chunk === "string" ? chunk : text.decode(chunk, { stream: true }));
  }
  yield* decoder.push(text.decode());
  yield* decoder.flush();
}

function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof (value as ReadableStream).getReader === "function";
}

// Node 20's web ReadableStream is async-iterable but its lib typings do not say so everywhere.
async function* readableToIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
