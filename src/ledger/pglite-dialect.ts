import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
} from "kysely";
import type { PGliteSession } from "./pglite-thread.ts";

/**
 * Kysely over embedded PGlite. Written here rather than taken from kysely-pglite-dialect because
 * that package's peer range stops at PGlite 0.4. PGlite is one database session, so the driver
 * hands out its single connection to one caller at a time: a transaction begun by one caller must
 * not see statements from another.
 */
export class PGliteDialect implements Dialect {
  /** `release`: what closing the database does instead of closing PGlite (a pooled one). */
  constructor(
    private readonly pglite: PGliteSession,
    private readonly release?: () => Promise<void>,
  ) {}

  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pglite, this.release);
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}

class PGliteDriver implements Driver {
  private readonly connection: PGliteConnection;
  private queue: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  constructor(
    private readonly pglite: PGliteSession,
    private readonly releasePglite?: () => Promise<void>,
  ) {
    this.connection = new PGliteConnection(pglite);
  }

  async init() {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.queue;
    let release!: () => void;
    this.queue = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    this.release = release;
    return this.connection;
  }

  async beginTransaction(connection: DatabaseConnection) {
    await connection.executeQuery({ sql: "begin", parameters: [] } as unknown as CompiledQuery);
  }
  async commitTransaction(connection: DatabaseConnection) {
    await connection.executeQuery({ sql: "commit", parameters: [] } as unknown as CompiledQuery);
  }
  async rollbackTransaction(connection: DatabaseConnection) {
    await connection.executeQuery({ sql: "rollback", parameters: [] } as unknown as CompiledQuery);
  }

  async releaseConnection() {
    const release = this.release;
    this.release = undefined;
    release?.();
  }

  async destroy() {
    await this.queue;
    if (this.releasePglite) await this.releasePglite();
    else if (!this.pglite.closed) await this.pglite.close();
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly pglite: PGliteSession) {}

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.run<R>(compiledQuery);
    const affected = result.affectedRows;
    return {
      rows: result.rows,
      ...(affected !== undefined ? { numAffectedRows: BigInt(affected) } : {}),
    };
  }

  /** Statements without parameters go through the simple protocol, which allows several at once
   * (migration files); the extended protocol allows only one. */
  private async run<R>(compiledQuery: CompiledQuery) {
    if (compiledQuery.parameters.length > 0) {
      return this.pglite.query<R>(compiledQuery.sql, [...compiledQuery.parameters]);
    }
    const results = await this.pglite.exec(compiledQuery.sql);
    const last = results.at(-1);
    return { rows: (last?.rows ?? []) as R[], affectedRows: last?.affectedRows };
  }

  // biome-ignore lint/correctness/useYield: PGlite has no cursors; kysely only needs the method.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on the embedded ledger");
  }
}
