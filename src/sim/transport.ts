import { encodeSSE } from "../protocols/index.ts";
import { SimulatorError } from "./errors.ts";
import type { FaultSpec } from "./faults.ts";
import type { OutgoingEvent } from "./protocols.ts";

/** The client's side of one request: its abort signal, and a way to cut the TCP connection. */
export interface Connection {
  /** Aborts when the client goes away (or the server closes its connections). */
  signal: AbortSignal;
  /** Destroys the socket without a proper end; absent when the app runs without a Node server. */
  drop?: () => void;
}

export interface Timing {
  /** Before the first byte of the reply. */
  firstMs: number;
  /** From the first event to the last (streams), or added to firstMs (whole replies). */
  restMs: number;
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (!(ms > 0) || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

// setTimeout cannot wait "forever": 2^31-1 ms (~24 days) is the longest it takes.
const FOREVER_MS = 2 ** 31 - 1;

const untilAborted = (signal: AbortSignal) => delay(FOREVER_MS, signal);

/** Half of a JSON text: what a reply cut short looks like. */
function cutShort(text: string): string {
  return text.slice(0, Math.max(1, Math.floor(text.length / 2)));
}

function eventText(event: OutgoingEvent, malformed: boolean): string {
  if (!malformed) return encodeSSE(event.data, event.event);
  const json = typeof event.data === "string" ? event.data : JSON.stringify(event.data);
  return encodeSSE(cutShort(json), event.event);
}

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

/** Where in a stream of `count` events a fault strikes, by default: after a couple, or midway. */
function faultPosition(fault: FaultSpec, count: number): number {
  const fallback = fault.kind === "stall" ? 2 : Math.floor(count / 2);
  return Math.min(fault.afterEvents ?? fallback, Math.max(0, count - 1));
}

/**
 * A streamed reply: the first event after `timing.firstMs`, the rest spread evenly over
 * `timing.restMs`; a stall, drop or malformed event as `fault` says.
 */
export function sseResponse(
  events: readonly OutgoingEvent[],
  timing: Timing,
  fault: FaultSpec | undefined,
  conn: Connection,
): Response {
  const encoder = new TextEncoder();
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  conn.signal.addEventListener("abort", onAbort, { once: true });
  const at = fault ? faultPosition(fault, events.length) : -1;
  const gapMs = events.length > 1 ? timing.restMs / (events.length - 1) : 0;
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      await delay(timing.firstMs, stop.signal);
      for (const [i, event] of events.entries()) {
        if (stop.signal.aborted) return;
        if (i === at && fault?.kind === "stall") {
          // Nothing more, ever: the client's timeout (or the server closing) ends it.
          await delay(FOREVER_MS, stop.signal);
          return;
        }
        if (i === at && fault?.kind === "drop") {
          dropConnection(conn, controller);
          return;
        }
        controller.enqueue(
          encoder.encode(eventText(event, i === at && fault?.kind === "malformed_json")),
        );
        if (i < events.length - 1) await delay(gapMs, stop.signal);
      }
      conn.signal.removeEventListener("abort", onAbort);
      controller.close();
    },
    cancel() {
      stop.abort();
    },
  });
  return new Response(body, { headers: SSE_HEADERS });
}

function dropConnection(conn: Connection, controller: ReadableStreamDefaultController): void {
  if (conn.drop) conn.drop();
  // Without a socket to cut (app.fetch in-process), erroring the body is the nearest equivalent.
  else controller.error(new SimulatorError("connection_dropped", "simulated dropped connection"));
}

/** A whole (non-streamed) reply after the full latency, or the fault instead. */
export async function jsonResponse(
  body: unknown,
  timing: Timing,
  fault: FaultSpec | undefined,
  conn: Connection,
): Promise<Response> {
  if (fault?.kind === "stall") {
    await untilAborted(conn.signal);
    // The client has gone; this answer is never read.
    return new Response(null, { status: 204 });
  }
  await delay(timing.firstMs + timing.restMs, conn.signal);
  const text = JSON.stringify(body);
  const headers = { "content-type": "application/json" };
  if (fault?.kind === "malformed_json") return new Response(cutShort(text), { headers });
  if (fault?.kind === "drop") {
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(cutShort(text)));
        // Let the half body reach the socket before cutting it.
        setTimeout(() => dropConnection(conn, controller), 10);
      },
    });
    return new Response(stream, { headers });
  }
  return new Response(text, { headers });
}
