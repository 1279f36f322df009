import type { Logger } from "pino";
import type { Ledger } from "../ledger/index.ts";
import { isBreakerPause } from "./circuit-breaker.ts";

/**
 * True when a person paused the line (from the console or the CLI, in any process sharing the
 * ledger): no new run starts until they resume it. Runs in flight carry on. The worker stamps the
 * pause as seen, so the console can tell the supervisor it has taken hold.
 */
export async function pausedByPerson(ledger: Ledger, logger: Logger): Promise<boolean> {
  const state = await ledger.line.state();
  if (!state.paused) return false;
  await ledger.line.noticePaused();
  // The circuit breaker's own pause is the breaker's to lift (a probe run after its cool-down).
  if (isBreakerPause(state)) return false;
  logger.debug({ by: state.changed_by, reason: state.reason }, "line paused: no new runs");
  return true;
}
