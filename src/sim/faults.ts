import { pickBySlices, ratesProblem, seededDraw } from "./draw.ts";
import { SimulatorError } from "./errors.ts";

/**
 * What can go wrong with a model request, as real providers fail:
 * - rate_limit: HTTP 429 with retry-after;
 * - server_error: HTTP 500 (or 502/503/529 via `status`);
 * - stall: a stream sends its first `afterEvents` events, then nothing until the client gives up
 *   (a non-streamed reply never arrives);
 * - malformed_json: event number `afterEvents` of a stream (or the whole non-streamed body) is cut short;
 * - drop: the connection is cut after `afterEvents` events (or half the non-streamed body).
 */
export const FAULT_KINDS = [
  "rate_limit",
  "server_error",
  "stall",
  "malformed_json",
  "drop",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSpec {
  kind: FaultKind;
  /** rate_limit: the retry-after the client is told (seconds, default 1). */
  retryAfterSeconds?: number;
  /** server_error: the HTTP status (default 500). */
  status?: number;
  /** stall / drop: events sent before it happens; malformed_json: the event cut short. */
  afterEvents?: number;
}

/** A fault as configured: a kind, an HTTP status (429, 500, 502, 503, 529) or a full spec. */
export type FaultInput = FaultKind | number | FaultSpec;

const SERVER_STATUSES = new Set([500, 502, 503, 504, 529]);

export function isHttpFault(fault: FaultSpec): boolean {
  return fault.kind === "rate_limit" || fault.kind === "server_error";
}

function invalid(message: string): SimulatorError {
  return new SimulatorError("invalid_fault", message);
}

function checkCount(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
    throw invalid(`${name} must be a whole number >= 0, got ${value}`);
  }
}

/** The spec a fault input stands for; throws SimulatorError("invalid_fault") saying what is wrong. */
export function normalizeFault(input: FaultInput): FaultSpec {
  if (typeof input === "number") {
    if (input === 429) return { kind: "rate_limit" };
    if (SERVER_STATUSES.has(input)) return { kind: "server_error", status: input };
    throw invalid(`fault status ${input} is not one of 429, ${[...SERVER_STATUSES].join(", ")}`);
  }
  if (typeof input === "string") {
    if ((FAULT_KINDS as readonly string[]).includes(input)) return { kind: input as FaultKind };
    throw invalid(`unknown fault "${input}"; expected one of ${FAULT_KINDS.join(", ")}`);
  }
  if (!input || !(FAULT_KINDS as readonly string[]).includes(input.kind)) {
    throw invalid(`a fault needs a kind, one of ${FAULT_KINDS.join(", ")}`);
  }
  if (input.status !== undefined && !SERVER_STATUSES.has(input.status)) {
    throw invalid(`server_error status must be one of ${[...SERVER_STATUSES].join(", ")}`);
  }
  if (input.retryAfterSeconds !== undefined && !(input.retryAfterSeconds >= 0)) {
    throw invalid(`retryAfterSeconds must be >= 0, got ${input.retryAfterSeconds}`);
  }
  checkCount("afterEvents", input.afterEvents);
  return { ...input };
}

export interface SimulatorFaults {
  /** Seed for the probabilistic faults: the same seed gives the same faults to the same request numbers. */
  seed?: number;
  /** Per-request probability of each fault; each takes its own slice of one draw, so they add up to at most 1. */
  rates?: Partial<Record<FaultKind, number>>;
  /** Faults for given 1-based request numbers: "request 3 gets a 429" is `{ 3: 429 }`. */
  requests?: Readonly<Record<number, FaultInput>>;
}

/** Which fault (if any) request `index` (0-based) gets; validates the options once, up front. */
export function faultSchedule(
  options: SimulatorFaults = {},
): (index: number) => FaultSpec | undefined {
  const rates = options.rates ?? {};
  const problem = ratesProblem(rates);
  if (problem) throw invalid(`fault ${problem}`);
  const scripted = new Map<number, FaultSpec>();
  for (const [key, value] of Object.entries(options.requests ?? {})) {
    const number = Number(key);
    if (!(Number.isInteger(number) && number >= 1)) {
      throw invalid(`fault request numbers start at 1, got "${key}"`);
    }
    scripted.set(number, normalizeFault(value));
  }
  const seed = options.seed ?? 1;
  return (index) => {
    const fixed = scripted.get(index + 1);
    if (fixed) return fixed;
    const kind = pickBySlices(seededDraw(seed, "fault", index), FAULT_KINDS, rates);
    return kind ? { kind } : undefined;
  };
}
