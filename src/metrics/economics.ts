import type { PriceTable } from "../gateway/prices.ts";
import { EconomicsInputError } from "./errors.ts";

/** An engineer's cost per year, in US dollars, when [economics] salary_usd does not say. */
export const DEFAULT_SALARY_USD = 250_000;
/**
 * One agent step's size when none is given: about what a coding agent sends (the conversation so
 * far, files read) and gets back per request, mid-run. Rough by design: `--input-tokens` and
 * `--output-tokens` replace it, and `nightshift report` shows the measured average.
 */
export const DEFAULT_REQUEST = { inputTokens: 20_000, outputTokens: 1_000, cachedShare: 0 };

const SECONDS_PER_DAY = 86_400;
const DAYS_PER_YEAR = 365;

export interface EconomicsQuestion {
  model: string;
  inputTokens: number;
  outputTokens: number;
  /** Share of the input served from the provider's cache (0..1). */
  cachedShare: number;
  salaryUsd: number;
  /** Spend per day to size the line for; default one engineer's salary spread over a year. */
  budgetUsdPerDay?: number;
  /** Or: a request rate, to price by the day. */
  requestsPerSecond?: number;
}

export interface EconomicsAnswer {
  model: string;
  priceAsOf: string;
  simulated: boolean;
  costPerRequestUsd: number;
  requestsPerSecond: number;
  /** Seconds between requests at that rate. */
  secondsPerRequest: number;
  costPerDayUsd: number;
  costPerYearUsd: number;
  /** How many engineers' salaries a year of that spend is. */
  engineerEquivalents: number;
  salaryUsd: number;
}

/**
 * The factory's back-of-the-envelope: what one request of the given size costs at the price
 * table's rates, and so how many requests a second a daily budget buys (or what a rate costs a
 * day), and how that compares to an engineer's salary.
 */
export function estimateEconomics(prices: PriceTable, q: EconomicsQuestion): EconomicsAnswer {
  const price = prices.priceOf(q.model);
  if (!price) {
    throw new EconomicsInputError(
      `the price table (as of ${prices.asOf}) has no price for model "${q.model}"`,
      "pass --model with a listed model (see src/gateway/prices.json), or add it to your [gateway] prices_file",
    );
  }
  positive("--salary", q.salaryUsd);
  if (q.cachedShare < 0 || q.cachedShare > 1) {
    throw new EconomicsInputError(
      `the cached share ${q.cachedShare} is not between 0 and 1`,
      "pass --cached-share as a fraction, e.g. 0.5",
    );
  }
  if (q.budgetUsdPerDay !== undefined && q.requestsPerSecond !== undefined) {
    throw new EconomicsInputError(
      "give a budget or a request rate, not both",
      "drop --budget-per-day or --rps",
    );
  }
  const costPerRequestUsd =
    prices.costOf(q.model, {
      inputTokens: q.inputTokens,
      outputTokens: q.outputTokens,
      cachedInputTokens: Math.round(q.inputTokens * q.cachedShare),
    }) ?? 0;
  if (costPerRequestUsd <= 0) {
    throw new EconomicsInputError(
      `a request of ${q.inputTokens} input and ${q.outputTokens} output tokens costs nothing at ${q.model}'s prices`,
      "give the request a size (--input-tokens, --output-tokens) or pick a priced model",
    );
  }
  let requestsPerSecond: number;
  if (q.requestsPerSecond !== undefined) {
    positive("--rps", q.requestsPerSecond);
    requestsPerSecond = q.requestsPerSecond;
  } else {
    const budget = q.budgetUsdPerDay ?? q.salaryUsd / DAYS_PER_YEAR;
    positive("--budget-per-day", budget);
    requestsPerSecond = budget / costPerRequestUsd / SECONDS_PER_DAY;
  }
  const costPerDayUsd = requestsPerSecond * SECONDS_PER_DAY * costPerRequestUsd;
  const costPerYearUsd = costPerDayUsd * DAYS_PER_YEAR;
  return {
    model: q.model,
    priceAsOf: prices.asOf,
    simulated: price.simulated,
    costPerRequestUsd,
    requestsPerSecond,
    secondsPerRequest: 1 / requestsPerSecond,
    costPerDayUsd,
    costPerYearUsd,
    engineerEquivalents: costPerYearUsd / q.salaryUsd,
    salaryUsd: q.salaryUsd,
  };
}

function positive(what: string, n: number): void {
  if (!Number.isFinite(n) || n <= 0) {
    throw new EconomicsInputError(`${what} ${n} is not a positive number`, `pass ${what} > 0`);
  }
}

export function formatEconomics(a: EconomicsAnswer, q: EconomicsQuestion): string[] {
  const usd = (n: number) =>
    n >= 100 ? `$${Math.round(n).toLocaleString("en-US")}` : `$${n.toPrecision(3)}`;
  return [
    `model        ${a.model} (prices as of ${a.priceAsOf})${a.simulated ? " SIMULATED: not a real model's price" : ""}`,
    `request      ${q.inputTokens.toLocaleString("en-US")} in (${Math.round(q.cachedShare * 100)}% cached), ${q.outputTokens.toLocaleString("en-US")} out: ${usd(a.costPerRequestUsd)} each`,
    `rate         ${a.requestsPerSecond.toPrecision(3)} requests/s (one every ${a.secondsPerRequest.toPrecision(3)} s)`,
    `cost         ${usd(a.costPerDayUsd)} a day, ${usd(a.costPerYearUsd)} a year`,
    `engineers    ${a.engineerEquivalents.toPrecision(3)} × a ${usd(a.salaryUsd)} salary`,
  ];
}
