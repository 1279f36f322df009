import path from "node:path";
import { loadConfig } from "../../config/index.ts";
import { loadPrices } from "../../gateway/prices.ts";
import { DEFAULT_SALARY_USD } from "../../metrics/economics.ts";
import {
  DEFAULT_REQUEST,
  type EconomicsQuestion,
  estimateEconomics,
  formatEconomics,
} from "../../metrics/index.ts";

/** A frontier model of the bundled price table: what "one engineer's salary buys" is told in. */
const DEFAULT_MODEL = "claude-opus-5";

export interface EconOptions {
  model?: string;
  budgetPerDay?: number;
  rps?: number;
  inputTokens?: number;
  outputTokens?: number;
  cachedShare?: number;
  salary?: number;
  json?: boolean;
}

/**
 * `nightshift econ`: the rough math from the price table. Works outside a factory too (then with
 * the bundled prices and defaults); inside one, its prices file, [agent] model and [economics].
 */
export async function econCommand(root: string, options: EconOptions): Promise<string> {
  const { config, file } = await loadConfig(root, { required: false });
  const pricesFile = config.gateway.prices_file;
  const prices = await loadPrices(pricesFile && path.resolve(root, pricesFile));
  const question: EconomicsQuestion = {
    model: options.model || (file ? config.agent.model : "") || DEFAULT_MODEL,
    inputTokens: options.inputTokens ?? DEFAULT_REQUEST.inputTokens,
    outputTokens: options.outputTokens ?? DEFAULT_REQUEST.outputTokens,
    cachedShare: options.cachedShare ?? DEFAULT_REQUEST.cachedShare,
    salaryUsd: options.salary ?? (file ? config.economics.salary_usd : DEFAULT_SALARY_USD),
    ...(options.budgetPerDay !== undefined ? { budgetUsdPerDay: options.budgetPerDay } : {}),
    ...(options.rps !== undefined ? { requestsPerSecond: options.rps } : {}),
  };
  const answer = estimateEconomics(prices, question);
  if (options.json) return JSON.stringify({ question, answer }, null, 2);
  return formatEconomics(answer, question).join("\n");
}
