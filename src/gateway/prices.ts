/** US dollars per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  /** True for the simulator's models: their cost is an estimate of what a real model would cost. */
  simulated: boolean;
}

/**
 * Prices as of 2026-11. The simulator's models are priced like a mid-range frontier model so that
 * simulated runs give plausible (and clearly labelled) cost figures.
 */
const PRICES: Record<string, ModelPrice> = {
  "sim-demo": { input: 3, output: 15, simulated: true },
  "sim-fast": { input: 0.25, output: 1.25, simulated: true },
};

export function priceOf(model: string): ModelPrice | undefined {
  return PRICES[model];
}

export function costOf(model: string, inputTokens: number, outputTokens: number): number {
  const price = priceOf(model);
  if (!price) return 0;
  return (inputTokens * price.input + outputTokens * price.output) / 1_000_000;
}
