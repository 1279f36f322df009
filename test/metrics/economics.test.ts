import { describe, expect, it } from "vitest";
import { bundledPrices, parsePriceTable } from "../../src/gateway/index.ts";
import { DEFAULT_REQUEST, estimateEconomics } from "../../src/metrics/index.ts";

const prices = parsePriceTable(
  JSON.stringify({
    as_of: "2026-11-01",
    models: { m: { input: 5, output: 25, cached_input: 0.5 } },
  }),
  "test",
);
const base = {
  model: "m",
  inputTokens: 20_000,
  outputTokens: 1_000,
  cachedShare: 0,
  salaryUsd: 250_000,
};

describe("economics", () => {
  it("prices a request and sizes the line for a budget", () => {
    // 20k in at $5/M = $0.10, 1k out at $25/M = $0.025.
    const a = estimateEconomics(prices, { ...base, budgetUsdPerDay: 1080 });
    expect(a.costPerRequestUsd).toBeCloseTo(0.125, 12);
    expect(a.requestsPerSecond).toBeCloseTo(1080 / 0.125 / 86_400, 12);
    expect(a.costPerDayUsd).toBeCloseTo(1080, 9);
    expect(a.engineerEquivalents).toBeCloseTo((1080 * 365) / 250_000, 9);
  });

  it("defaults the budget to one salary a year: DESIGN.md's one request every ~15 s", () => {
    const a = estimateEconomics(bundledPrices, { ...base, model: "claude-opus-5" });
    expect(a.engineerEquivalents).toBeCloseTo(1, 9);
    expect(a.secondsPerRequest).toBeGreaterThan(14);
    expect(a.secondsPerRequest).toBeLessThan(17);
    expect(DEFAULT_REQUEST.inputTokens).toBe(20_000);
  });

  it("prices a request rate by the day, counting cached input at its price", () => {
    const a = estimateEconomics(prices, { ...base, cachedShare: 0.5, requestsPerSecond: 2 });
    const perRequest = (10_000 * 5 + 10_000 * 0.5 + 1_000 * 25) / 1e6;
    expect(a.costPerRequestUsd).toBeCloseTo(perRequest, 12);
    expect(a.costPerDayUsd).toBeCloseTo(2 * 86_400 * perRequest, 6);
  });

  it("refuses what it cannot answer, saying how to fix it", () => {
    const fail = (q: Partial<typeof base> & Record<string, unknown>) => {
      try {
        estimateEconomics(prices, { ...base, ...q });
      } catch (error) {
        return error as { code: string; message: string; hint: string };
      }
      throw new Error("no error");
    };
    expect(fail({ model: "unknown-model" })).toMatchObject({
      code: "economics_invalid",
      message: expect.stringContaining('"unknown-model"'),
      hint: expect.stringContaining("--model"),
    });
    expect(fail({ requestsPerSecond: 1, budgetUsdPerDay: 5 }).message).toContain("not both");
    expect(fail({ salaryUsd: 0 }).message).toContain("--salary");
    expect(fail({ cachedShare: 2 }).code).toBe("economics_invalid");
    expect(fail({ inputTokens: 0, outputTokens: 0 }).message).toContain("costs nothing");
  });
});
