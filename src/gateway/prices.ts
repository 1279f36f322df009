import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { NightshiftError } from "../errors/index.ts";

const modelPriceSchema = z
  .object({
    input: z.number().min(0),
    output: z.number().min(0),
    cached_input: z.number().min(0).optional(),
    simulated: z.boolean().default(false),
  })
  .strict();

const priceTableSchema = z
  .object({
    as_of: z.iso.date({ message: "must be a date like 2026-11-01" }),
    currency: z.string().optional(),
    models: z.record(z.string().min(1), modelPriceSchema),
  })
  .strict();

/** US dollars per million tokens. */
export type ModelPrice = z.infer<typeof modelPriceSchema>;

/**
 * Prices per model, dated. A model is priced by its exact name, else by the longest listed name
 * it starts with, so "claude-sonnet-4-5-20250929" finds "claude-sonnet-4-5".
 */
export class PriceTable {
  private readonly names: string[];

  constructor(
    readonly asOf: string,
    private readonly models: Record<string, ModelPrice>,
  ) {
    this.names = Object.keys(models).sort((a, b) => b.length - a.length);
  }

  /**
   * The name a routed request is priced by: the provider's name for the model when the table knows
   * it, else the name the agent asked for; undefined when neither is priced.
   */
  pricedName(providerModel: string, requestedModel: string): string | undefined {
    if (this.priceOf(providerModel)) return providerModel;
    return this.priceOf(requestedModel) ? requestedModel : undefined;
  }

  priceOf(model: string): ModelPrice | undefined {
    const exact = this.models[model];
    if (exact) return exact;
    const prefix = this.names.find((name) => model.startsWith(name));
    return prefix ? this.models[prefix] : undefined;
  }

  costOf(
    model: string,
    usage: { inputTokens: number; outputTokens: number; cachedInputTokens?: number },
  ) {
    const price = this.priceOf(model);
    if (!price) return undefined;
    const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
    const cachedPrice = price.cached_input ?? price.input;
    return (
      ((usage.inputTokens - cached) * price.input +
        cached * cachedPrice +
        usage.outputTokens * price.output) /
      1_000_000
    );
  }

  /** This table with another's entries laid over it (a user's file overrides the bundled one). */
  merge(other: PriceTable): PriceTable {
    return new PriceTable(other.asOf, { ...this.models, ...other.models });
  }
}

export function parsePriceTable(text: string, source: string): PriceTable {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw priceError(source, `not valid JSON: ${(error as Error).message}`);
  }
  const result = priceTableSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
    throw priceError(source, problems.join("; "));
  }
  return new PriceTable(result.data.as_of, result.data.models);
}

function priceError(source: string, problem: string): NightshiftError {
  return new NightshiftError("prices_invalid", `price table ${source} is invalid: ${problem}`, {
    hint: 'a price table is JSON: {"as_of": "2026-11-01", "models": {"name": {"input": 3, "output": 15}}} (USD per million tokens)',
  });
}

const BUNDLED_FILE = new URL("./prices.json", import.meta.url);
export const bundledPrices: PriceTable = parsePriceTable(
  readFileSync(BUNDLED_FILE, "utf8"),
  "prices.json (bundled)",
);

/** The bundled table, overridden by the user's file when there is one. */
export async function loadPrices(file?: string): Promise<PriceTable> {
  if (!file) return bundledPrices;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new NightshiftError(
      "prices_missing",
      `cannot read price table ${file}: ${(error as NodeJS.ErrnoException).code}`,
      {
        hint: "fix [gateway] prices_file in nightshift.toml, or remove it to use the bundled prices",
      },
    );
  }
  return bundledPrices.merge(parsePriceTable(text, file));
}

export function priceOf(model: string): ModelPrice | undefined {
  return bundledPrices.priceOf(model);
}
