import { appendFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";

const MAX_FIELD_CHARS = 256 * 1024;

export interface TranscriptEntry {
  requestId: string;
  at: string;
  protocol: string;
  model: string;
  status: number;
  request: string;
  response: string;
  usage?: unknown;
  error?: string;
}

export interface TranscriptOptions {
  /** Queued but unwritten text beyond this makes append() ask its caller to wait. */
  maxQueuedChars?: number;
  /**
   * How long lines gather before they are written (unless the queue is filling up or someone
   * waits on flush()): one append per run per interval instead of one per turn of the event loop,
   * each of which opens and closes the file.
   */
  batchMs?: number;
  logger?: Logger;
}

/**
 * Every model exchange of a run, one JSON line each, in `<dir>/run-<id>.jsonl`: what the agent
 * asked and what the model answered, for a person reviewing a run. Large bodies are cut in the
 * middle.
 *
 * Lines are queued and written by one writer, all lines of a run that queued meanwhile in one
 * append: writing a line at a time could not keep up with a busy gateway, and the lines queued
 * in memory without bound. The queue is bounded: past `maxQueuedChars`, append() returns a promise
 * the gateway waits on before answering (back-pressure), so nothing is dropped and little is at
 * risk if the process dies.
 */
export class Transcripts {
  private queue = new Map<number, string[]>();
  private queuedChars = 0;
  private writing: Promise<void> | undefined;
  private waiters: (() => void)[] = [];
  private ready: Promise<unknown> | undefined;
  private readonly maxQueuedChars: number;
  private readonly batchMs: number;
  /** Ends the current wait for more lines early (flush() wants them on disk now). */
  private hurry: (() => void) | undefined;
  private flushing = 0;

  constructor(
    readonly dir: string,
    private readonly options: TranscriptOptions = {},
  ) {
    this.maxQueuedChars = options.maxQueuedChars ?? 8 * 1024 * 1024;
    this.batchMs = options.batchMs ?? 50;
  }

  /** Queues the entry; returns a promise to wait on when the queue is full, else undefined. */
  append(runId: number, entry: TranscriptEntry): Promise<void> | undefined {
    const clipped =
      entry.request.length <= MAX_FIELD_CHARS && entry.response.length <= MAX_FIELD_CHARS
        ? entry
        : { ...entry, request: clip(entry.request), response: clip(entry.response) };
    const line = `${JSON.stringify(clipped)}\n`;
    const lines = this.queue.get(runId);
    if (lines) lines.push(line);
    else this.queue.set(runId, [line]);
    this.queuedChars += line.length;
    this.writing ??= this.drain();
    if (this.queuedChars * 4 >= this.maxQueuedChars) this.hurry?.();
    if (this.queuedChars <= this.maxQueuedChars) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private async drain(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true });
    try {
      await this.ready;
    } catch {
      this.ready = undefined;
    }
    while (this.queue.size > 0) {
      if (this.batchMs > 0 && this.flushing === 0 && this.queuedChars * 4 < this.maxQueuedChars) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.batchMs);
          this.hurry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.hurry = undefined;
      }
      const batch = this.queue;
      this.queue = new Map();
      let chars = 0;
      await Promise.all(
        [...batch].map(async ([runId, lines]) => {
          const text = lines.join("");
          chars += text.length;
          try {
            await appendFile(this.fileOf(runId), text);
          } catch (error) {
            // Kept, not dropped: the lines go back to the front of the queue and are tried again.
            this.options.logger?.error(
              { err: error, runId },
              "cannot write a transcript; retrying",
            );
            chars -= text.length;
            this.queue.set(runId, [...lines, ...(this.queue.get(runId) ?? [])]);
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }),
      );
      this.queuedChars -= chars;
      if (this.queuedChars <= this.maxQueuedChars) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      }
    }
    this.writing = undefined;
  }

  async read(runId: number): Promise<TranscriptEntry[]> {
    await this.flush();
    const text = await readFile(this.fileOf(runId), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as TranscriptEntry);
  }

  /** Resolves once everything queued so far is on disk. */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      while (this.writing) {
        this.hurry?.();
        await this.writing;
      }
    } finally {
      this.flushing--;
    }
  }

  /** Half the bound is queued: a large line could make the next append() ask its caller to wait. */
  get nearlyFull(): boolean {
    return this.queuedChars * 2 >= this.maxQueuedChars;
  }

  /** Characters queued and not yet written. */
  get backlog(): number {
    return this.queuedChars;
  }

  fileOf(runId: number): string {
    return path.join(this.dir, `run-${runId}.jsonl`);
  }
}

function clip(text: string): string {
  if (text.length <= MAX_FIELD_CHARS) return text;
  const half = MAX_FIELD_CHARS / 2;
  return `${text.slice(0, half)}\n… [${text.length - MAX_FIELD_CHARS} characters cut] …\n${text.slice(-half)}`;
}
