// The embedded ledger's PGlite, on a thread of its own (see pglite-thread.ts). PGlite runs
// PostgreSQL in WebAssembly, and each statement runs synchronously to its end: on the main thread
// a metering batch held up every request in flight for 5-50 ms. Plain JavaScript so that it loads
// the same way from src/ (tsx, vitest) and from dist/.
import { readFile } from "node:fs/promises";
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";

/** An error as plain data: structured cloning keeps an Error's message but not PostgreSQL's fields. */
function plainError(error) {
  if (!(error instanceof Error)) return { message: String(error) };
  const fields = {};
  for (const [key, value] of Object.entries(error)) {
    if (value === undefined || typeof value === "function") continue;
    if (typeof value === "object" && value !== null) continue;
    fields[key] = value;
  }
  return { ...fields, name: error.name, message: error.message };
}

let pglite;
try {
  // A new data directory may start as a copy of the cached empty, migrated ledger (template.ts).
  const template = workerData.templateFile
    ? { loadDataDir: new Blob([await readFile(workerData.templateFile)]) }
    : {};
  pglite = await PGlite.create(workerData.dataDir, template);
} catch (error) {
  parentPort.postMessage({ id: 0, error: plainError(error) });
  parentPort.close();
}

if (pglite) {
  pglite.onNotification((channel, payload) => {
    parentPort.postMessage({ notification: { channel, payload } });
  });
  parentPort.on("message", async ({ id, op, sql, params }) => {
    try {
      if (op === "query") {
        const result = await pglite.query(sql, params);
        parentPort.postMessage({
          id,
          result: { rows: result.rows, affectedRows: result.affectedRows },
        });
      } else if (op === "exec") {
        const results = await pglite.exec(sql);
        parentPort.postMessage({
          id,
          result: results.map((r) => ({ rows: r.rows, affectedRows: r.affectedRows })),
        });
      } else if (op === "dump") {
        const tarball = await pglite.dumpDataDir("gzip");
        parentPort.postMessage({ id, result: new Uint8Array(await tarball.arrayBuffer()) });
      } else if (op === "close") {
        if (!pglite.closed) await pglite.close();
        parentPort.postMessage({ id, result: null });
        parentPort.close();
      }
    } catch (error) {
      parentPort.postMessage({ id, error: plainError(error) });
    }
  });
  parentPort.postMessage({ id: 0, result: null });
}
