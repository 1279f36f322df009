import { Worker } from "node:worker_threads";

/** What the ledger uses of a PGlite session: PGlite itself, or PGlite on a thread of its own. */
export interface PGliteSession {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>;
  exec(sql: string): Promise<{ rows: unknown[]; affectedRows?: number }[]>;
  onNotification(callback: (channel: string, payload: string) => void): () => void;
  close(): Promise<void>;
  readonly closed: boolean;
}

interface Reply {
  id?: number;
  result?: unknown;
  error?: { message: string; name?: string } & Record<string, unknown>;
  notification?: { channel: string; payload: string };
}

/**
 * The embedded ledger's PGlite on a worker thread. PGlite runs each statement synchronously in
 * WebAssembly; on the main thread a metering batch (5-50 ms) held up every request the gateway had
 * in flight, and any other ledger work stalled the line's event loop the same way. Here the main
 * thread only sends the statement and gets the rows back (structured clone keeps PGlite's parsed
 * values: dates, JSON, byte arrays), and a PostgreSQL error keeps its fields (code, constraint, …)
 * so that callers tell errors apart as before.
 */
export class ThreadedPGlite implements PGliteSession {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  private readonly listeners = new Set<(channel: string, payload: string) => void>();
  private ended = false;
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (reply: Reply) => this.onReply(reply));
    worker.on("error", (error) => this.fail(error));
    worker.on("exit", (code) => this.fail(new Error(`the ledger's thread exited (code ${code})`)));
  }

  /**
   * Starts the thread and opens (creating as needed) the data directory in it; a new one starts as
   * a copy of `templateFile` when given (see template.ts).
   */
  static async create(dataDir: string, templateFile?: string): Promise<ThreadedPGlite> {
    const worker = new Worker(new URL("./pglite-worker.mjs", import.meta.url), {
      workerData: { dataDir, templateFile },
    });
    const session = new ThreadedPGlite(worker);
    // id 0 is the thread's answer to opening the data directory.
    await new Promise((resolve, reject) => session.pending.set(0, { resolve, reject }));
    // An idle ledger does not keep the process alive, as in-thread PGlite would not.
    worker.unref();
    return session;
  }

  get closed(): boolean {
    return this.ended;
  }

  query<R>(sql: string, params: unknown[] = []): Promise<{ rows: R[]; affectedRows?: number }> {
    return this.call("query", sql, params) as Promise<{ rows: R[]; affectedRows?: number }>;
  }

  exec(sql: string): Promise<{ rows: unknown[]; affectedRows?: number }[]> {
    return this.call("exec", sql) as Promise<{ rows: unknown[]; affectedRows?: number }[]>;
  }

  /** The data directory as a gzipped tarball (what PGlite's loadDataDir takes). */
  async dumpDataDir(): Promise<Uint8Array> {
    return (await this.call("dump")) as Uint8Array;
  }

  onNotification(callback: (channel: string, payload: string) => void): () => void {
    this.listeners.add(callback);
    return () => this.listeners.delete(callback);
  }

  async close(): Promise<void> {
    if (this.ended) return;
    await this.call("close");
    this.ended = true;
    await this.worker.terminate();
  }

  private call(op: string, sql?: string, params?: unknown[]): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error("the embedded ledger is closed"));
    const id = this.nextId++;
    // A statement in flight keeps the process alive until its answer comes back.
    if (this.pending.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ id, op, sql, params });
      } catch (error) {
        // A parameter that cannot be cloned: nothing was sent, so nothing will answer.
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker.unref();
        reject(error);
      }
    });
  }

  private onReply(reply: Reply): void {
    if (reply.notification) {
      for (const listener of this.listeners) {
        listener(reply.notification.channel, reply.notification.payload);
      }
      return;
    }
    const id = reply.id as number;
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.error) {
      const { message, name, ...fields } = reply.error;
      const error = Object.assign(new Error(message), fields);
      if (name) error.name = name;
      waiting.reject(error);
    } else {
      waiting.resolve(reply.result);
    }
  }

  private fail(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }
}
