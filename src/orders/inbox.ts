import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describeError } from "../errors/index.ts";
import type { Ledger, NewWorkOrder, WorkOrder } from "../ledger/index.ts";
import { checkOrderAgents } from "./intake.ts";

/**
 * Orders waiting to enter the ledger while another process holds it (the embedded ledger admits
 * one process at a time): `nightshift add` drops a file here, and the running line takes it in on
 * its next poll. Files are written under a temporary name and renamed, so a half-written file is
 * never read; a file the ledger refuses moves to `rejected/` with the reason beside it.
 */
export class Inbox {
  constructor(readonly dir: string) {}

  async put(orders: NewWorkOrder[]): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const name = `${Date.now().toString().padStart(15, "0")}-${randomBytes(4).toString("hex")}.json`;
    const temporary = path.join(this.dir, `.${name}.tmp`);
    await writeFile(temporary, JSON.stringify(orders));
    await rename(temporary, path.join(this.dir, name));
    return path.join(this.dir, name);
  }

  /** Adds every waiting file's orders to the ledger, oldest first. */
  async drain(
    ledger: Ledger,
  ): Promise<{ added: WorkOrder[]; rejected: { file: string; reason: string }[] }> {
    const files = (await readdir(this.dir).catch(() => [] as string[]))
      .filter((f) => /^\d+-[0-9a-f]+\.json$/.test(f))
      .sort();
    const added: WorkOrder[] = [];
    const rejected: { file: string; reason: string }[] = [];
    for (const file of files) {
      const full = path.join(this.dir, file);
      try {
        const orders = JSON.parse(await readFile(full, "utf8")) as NewWorkOrder[];
        checkOrderAgents(orders, `inbox file ${file}`);
        added.push(...(await ledger.addOrders(orders)));
        await rm(full);
      } catch (error) {
        const reason = describeError(error);
        await mkdir(path.join(this.dir, "rejected"), { recursive: true });
        await rename(full, path.join(this.dir, "rejected", file));
        await writeFile(path.join(this.dir, "rejected", `${file}.reason.txt`), `${reason}\n`);
        rejected.push({ file, reason });
      }
    }
    return { added, rejected };
  }
}
