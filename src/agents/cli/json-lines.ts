/** What one line of an agent's stdout turned out to be. */
export type OutputLine =
  | { kind: "event"; value: Record<string, unknown> }
  /** Not a JSON object: printed by a confused, crashing or hostile process. */
  | { kind: "garbage"; preview: string }
  /** Longer than the cap: dropped unparsed, so one runaway line cannot exhaust memory. */
  | { kind: "oversized"; bytes: number };

const PREVIEW_CHARS = 200;

/**
 * Splits a byte stream into lines and parses each as one JSON object. An agent CLI's output is
 * untrusted: nothing here throws, whatever arrives.
 */
export class JsonLines {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipping = false;
  private skippedBytes = 0;

  constructor(
    private readonly onLine: (line: OutputLine) => void,
    private readonly maxLineBytes = 32 * 1024 * 1024,
  ) {}

  write(chunk: Buffer): void {
    let rest = chunk;
    for (let at = rest.indexOf(0x0a); at !== -1; at = rest.indexOf(0x0a)) {
      this.append(rest.subarray(0, at));
      this.endLine();
      rest = rest.subarray(at + 1);
    }
    this.append(rest);
  }

  /** The stream ended: a last line without a newline still counts. */
  end(): void {
    if (this.pendingBytes > 0 || this.skipping) this.endLine();
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    if (this.skipping) {
      this.skippedBytes += part.length;
      return;
    }
    if (this.pendingBytes + part.length > this.maxLineBytes) {
      this.skipping = true;
      this.skippedBytes = this.pendingBytes + part.length;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    this.pending.push(Buffer.from(part));
    this.pendingBytes += part.length;
  }

  private endLine(): void {
    if (this.skipping) {
      this.onLine({ kind: "oversized", bytes: this.skippedBytes });
      this.skipping = false;
      this.skippedBytes = 0;
      return;
    }
    const text = Buffer.concat(this.pending, this.pendingBytes).toString("utf8").trim();
    this.pending = [];
    this.pendingBytes = 0;
    if (text === "") return;
    this.onLine(parseLine(text));
  }
}

export function parseLine(text: string): OutputLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "garbage", preview: preview(text) };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { kind: "garbage", preview: preview(text) };
  }
  return { kind: "event", value: value as Record<string, unknown> };
}

function preview(text: string): string {
  // Control characters from a garbled stream would garble logs and the console too.
  let clean = "";
  for (const char of text) clean += char < " " || char === "\u007f" ? "?" : char;
  return clean.length > PREVIEW_CHARS ? `${clean.slice(0, PREVIEW_CHARS)}…` : clean;
}

/** Readers for untrusted JSON: each answers undefined instead of trusting a shape. */
export function obj(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

export function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0;
}
