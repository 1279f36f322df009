// Shared plumbing for the fake model providers in fake-providers.ts.
// Deliberately imports nothing from src/: the wire formats are written by hand.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeToolCall {
  name: string;
  arguments: Record<string, unknown>;
}
export interface FakeTurn {
  text?: string;
  toolCalls?: FakeToolCall[];
  /** reported usage; default: computed by `estimateUsage` */
  usage?: { input: number; output: number };
}
export interface FakeFailure {
  fail: {
    status: number;
    /** provider-style error type/message */
    message?: string;
    retryAfterSeconds?: number;
  };
}
export interface RecordedRequest {
  method: string;
  path: string;
  /** path + query */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: request bodies are arbitrary JSON, read freely by scripts
  body: any;
}
/** Decides the reply to each model request (not to count_tokens / HEAD). index counts model requests from 0. */
export type FakeScript = (request: RecordedRequest, index: number) => FakeTurn | FakeFailure;
export interface FakeProvider {
  /** The base URL exactly as that vendor's official SDK takes it. */
  url: string;
  /** Every request received, in order, including refused ones. */
  requests: RecordedRequest[];
  /** Sum of the usage this fake reported in successful model replies (streamed or not). */
  reported: { inputTokens: number; outputTokens: number; requests: number };
  close(): Promise<void>;
}

export interface Usage {
  input: number;
  output: number;
}

/** Characters of model output a turn stands for: its text plus each call's name and JSON arguments. */
export function outputChars(turn: FakeTurn): number {
  let chars = turn.text?.length ?? 0;
  for (const call of turn.toolCalls ?? [])
    chars += call.name.length + JSON.stringify(call.arguments).length;
  return chars;
}

/**
 * The usage a fake reports when the script gives none:
 * input = ceil(JSON.stringify(request body).length / 4), output = ceil(output chars / 4), both at least 1.
 */
export function estimateUsage(body: unknown, turn: FakeTurn): Usage {
  return {
    input: Math.max(1, Math.ceil(JSON.stringify(body ?? null).length / 4)),
    output: Math.max(1, Math.ceil(outputChars(turn) / 4)),
  };
}

export function isFailure(reply: FakeTurn | FakeFailure): reply is FakeFailure {
  return typeof (reply as FakeFailure).fail === "object" && (reply as FakeFailure).fail !== null;
}

/** Splits `s` into up to `n` consecutive non-empty pieces (at least two when s has two characters). */
export function pieces(s: string, n = 3): string[] {
  if (s.length <= 1) return [s];
  const count = Math.min(Math.max(2, n), s.length);
  const size = Math.ceil(s.length / count);
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

/** Text deltas: a few pieces, more for longer text. */
export function textPieces(text: string): string[] {
  return pieces(text, Math.min(8, Math.max(2, Math.ceil(text.length / 12))));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A deterministic id: prefix + counter, padded with a fixed alphabet so it looks like the vendor's. */
export function makeId(prefix: string, n: number, length = 24): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789";
  let s = "";
  let x = n * 7919 + 104729;
  for (let i = 0; i < length - 6; i++) {
    s += alphabet[x % alphabet.length];
    x = Math.floor(x / alphabet.length) + i * 31 + n;
  }
  return `${prefix}${s}${String(n).padStart(6, "0")}`;
}

/** One HTTP exchange as a handler sees it. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  recorded: RecordedRequest;
  query: URLSearchParams;
  /** Set when a body was sent but is not JSON. */
  parseError?: string;
}

/** State every fake shares: the recording, the script, the counters. */
export class FakeCore {
  readonly requests: RecordedRequest[] = [];
  readonly reported = { inputTokens: 0, outputTokens: 0, requests: 0 };
  private modelRequests = 0;
  private ids = 0;
  constructor(private readonly script: FakeScript) {}

  /** Asks the script about a model request; a throwing script becomes a 500 from the fake. */
  decide(recorded: RecordedRequest): FakeTurn | FakeFailure {
    const index = this.modelRequests++;
    try {
      return this.script(recorded, index);
    } catch (error) {
      return { fail: { status: 500, message: `fake script threw: ${String(error)}` } };
    }
  }

  /** Counts a successful model reply; `usage` is what went on the wire (undefined when none did). */
  report(usage: Usage | undefined): void {
    this.reported.requests++;
    if (!usage) return;
    this.reported.inputTokens += usage.input;
    this.reported.outputTokens += usage.output;
  }

  nextId(): number {
    return ++this.ids;
  }

  /** How many requests arrived so far (for rate-limit "remaining" headers). */
  get seen(): number {
    return this.requests.length;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts a node:http server on 127.0.0.1:0 that records every request and hands it to `handle`. */
export async function serve(
  core: FakeCore,
  handle: (exchange: Exchange) => Promise<void> | void,
  urlSuffix: string,
): Promise<FakeProvider> {
  const server = createServer(async (req, res) => {
    try {
      const raw = await readBody(req);
      const target = new URL(req.url ?? "/", "http://127.0.0.1");
      let body: unknown;
      let parseError: string | undefined;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw);
        } catch (error) {
          body = raw;
          parseError = (error as Error).message;
        }
      }
      const recorded: RecordedRequest = {
        method: req.method ?? "GET",
        path: target.pathname,
        url: target.pathname + target.search,
        headers: { ...req.headers },
        body,
      };
      core.requests.push(recorded);
      await handle({ req, res, recorded, query: target.searchParams, parseError });
    } catch (error) {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
      }
      res.end(`fake provider crashed: ${String(error)}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${urlSuffix}`,
    requests: core.requests,
    reported: core.reported,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = "application/json",
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export function startSse(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    ...headers,
  });
}

/** Reads one header as a single string (first value when repeated). */
export function header(recorded: RecordedRequest, name: string): string | undefined {
  const value = recorded.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The token of an `Authorization: Bearer <token>` header, if any. */
export function bearer(recorded: RecordedRequest): string | undefined {
  const value = header(recorded, "authorization");
  const match = value ? /^Bearer\s+(.+)$/i.exec(value.trim()) : null;
  return match?.[1]?.trim();
}

/** Joins the text of a tool result's content in any of the shapes the protocols use. */
export function textOf(content: unknown): string | undefined {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    const texts = content
      .map((part) => (isRecord(part) && typeof part.text === "string" ? part.text : undefined))
      .filter((t): t is string => t !== undefined);
    return texts.join("");
  }
  if (content === undefined || content === null) return undefined;
  return JSON.stringify(content);
}
