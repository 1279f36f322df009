import { randomBytes, timingSafeEqual } from "node:crypto";

/** What a scoped key lets its holder do: spend on behalf of one run of one order. */
export interface Grant {
  runId: number;
  orderId: number;
}

const PREFIX = "nsk";

/**
 * Scoped keys: one per run, naming its run (`nsk-run42-…`) so a leaked key is traceable, and
 * revoked when the run ends. Agents only ever hold these; provider keys stay in the gateway.
 */
export class ScopedKeys {
  private readonly byKey = new Map<string, Grant>();
  private readonly byRun = new Map<number, string>();

  issue(grant: Grant): string {
    this.revoke(grant.runId);
    const key = `${PREFIX}-run${grant.runId}-${randomBytes(18).toString("base64url")}`;
    this.byKey.set(key, grant);
    this.byRun.set(grant.runId, key);
    return key;
  }

  /** The grant for a key, or undefined if it was never issued or has been revoked. */
  lookup(key: string | undefined): Grant | undefined {
    if (!key) return undefined;
    const grant = this.byKey.get(key);
    if (!grant) return undefined;
    // The map lookup already matched; compare again in constant time so timing leaks nothing.
    const issued = this.byRun.get(grant.runId);
    if (!issued || issued.length !== key.length) return undefined;
    return timingSafeEqual(Buffer.from(issued), Buffer.from(key)) ? grant : undefined;
  }

  revoke(runId: number): boolean {
    const key = this.byRun.get(runId);
    if (!key) return false;
    this.byRun.delete(runId);
    this.byKey.delete(key);
    return true;
  }

  get active(): number {
    return this.byKey.size;
  }
}
