import { appendFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";

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

/**
 * Every model exchange of a run, one JSON line each, in `<dir>/run-<id>.jsonl`: what the agent
 * asked and what the model answered, for a person reviewing a run. Appends to one file are
 * serialised; large bodies are cut in the middle.
 */
export class Transcripts {
  private readonly chains = new Map<number, Promise<void>>();
  private ready: Promise<unknown> | undefined;

  constructor(readonly dir: string) {}

  append(runId: number, entry: TranscriptEntry): void {
    this.ready ??= mkdir(this.dir, { recursive: true });
    const line = `${JSON.stringify({ ...entry, request: clip(entry.request), response: clip(entry.response) })}\n`;
    const previous = this.chains.get(runId) ?? Promise.resolve();
    const next = previous
      .then(() => this.ready)
      .then(() => appendFile(this.fileOf(runId), line))
      .catch(() => undefined);
    this.chains.set(runId, next);
  }

  async read(runId: number): Promise<TranscriptEntry[]> {
    await this.chains.get(runId);
    const text = await readFile(this.fileOf(runId), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as TranscriptEntry);
  }

  async flush(): Promise<void> {
    await Promise.all(this.chains.values());
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
