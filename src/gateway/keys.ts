import { randomBytes, timingSafeEqual } from "node:crypto";

/**
 * What a scoped key lets its holder do: spend on behalf of one run of one order, or (runId null)
 * on the factory's own behalf, e.g. the acceptance writer drafting an order's hidden scenarios.
 */
export interface Grant {
  runId: number | null;
  orderId: number | null;
}

/** A run's grant: the run and its order are both known. */
export interface RunGrant {
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
    if (grant.runId === null) {
      // A factory-level key: one per request site, revoked by the key itself (revokeKey).
      const key = `${PREFIX}-factory-${randomBytes(18).toString("base64url")}`;
      this.byKey.set(key, grant);
      return key;
    }
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
    // A factory key is looked up by itself alone: the map's exact match is the check.
    if (grant.runId === null) return grant;
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

  /** Revokes one key, whatever it grants. */
  revokeKey(key: string): boolean {
    const grant = this.byKey.get(key);
    if (!grant) return false;
    this.byKey.delete(key);
    if (grant.runId !== null && this.byRun.get(grant.runId) === key) this.byRun.delete(grant.runId);
    return true;
  }

  get active(): number {
    return this.byKey.size;
  }
}
