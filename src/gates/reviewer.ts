import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, Output } from "ai";
import { z } from "zod";
import { gitIn, outcome, rangeOf } from "./diff.ts";
import { GateError } from "./errors.ts";
import type { Gate } from "./types.ts";

export interface ReviewerGateOptions {
  /** Model name at the gateway, e.g. the simulator's "sim-reviewer" or a real provider's model. */
  model: string;
  /** The diff is cut to this many characters before it is sent. */
  maxDiffChars?: number;
}

export const reviewVerdictSchema = z.object({
  verdict: z.enum(["approve", "reject"]),
  reasons: z.array(z.string()).max(20),
});

export type ReviewVerdict = z.infer<typeof reviewVerdictSchema>;

/** Marks the reviewer's request, so a simulator policy can tell it from an agent's. */
export const REVIEWER_MARKER = "You review one change for nightshift's merge ratchet.";

const SYSTEM = `${REVIEWER_MARKER}
Read the work order and the diff. Approve only if the diff does what the order asks, and nothing
harmful besides (no disabled or weakened tests, no unrelated changes, no security problems).
Answer with JSON only: {"verdict": "approve" | "reject", "reasons": ["short reason", ...]}.`;

/**
 * A second model reads the diff and the work order and gives a verdict with reasons. It talks to
 * the model only through the gateway (the endpoint is the run's scoped one), so it is metered and
 * budgeted like the agent.
 */
export function createReviewerGate(options: ReviewerGateOptions): Gate {
  const maxDiffChars = options.maxDiffChars ?? 40_000;
  return {
    name: "reviewer",
    scope: "change",
    async run(ctx) {
      const started = performance.now();
      const { base, commit } = rangeOf("reviewer", ctx);
      if (!ctx.model || !ctx.order) {
        throw new GateError(
          "gate_missing_context",
          "reviewer",
          "needs the work order and a model endpoint, and was given neither or only one",
          "run it through the line, which passes both; in custom wiring set GateContext.order and .model",
        );
      }
      const diff = await gitIn(ctx.workspacePath, [
        "diff",
        "--no-color",
        "--no-renames",
        base,
        commit,
      ]);
      const shown =
        diff.length > maxDiffChars ? `${diff.slice(0, maxDiffChars)}\n[... diff cut ...]` : diff;
      const endpoint = await ctx.model();
      const provider = createOpenAICompatible({
        name: "nightshift-reviewer",
        baseURL: endpoint.baseURL,
        apiKey: endpoint.apiKey,
        includeUsage: true,
      });
      const order = ctx.order;
      let verdict: ReviewVerdict;
      try {
        const result = await generateText({
          model: provider.chatModel(options.model),
          system: SYSTEM,
          prompt: `Work order WO-${order.id}: ${order.title}\n\n${order.spec}\n\nAcceptance:\n${order.acceptance || "(none given)"}\n\nDiff:\n${shown}`,
          output: Output.object({ schema: reviewVerdictSchema }),
          maxRetries: 1,
          ...(ctx.signal ? { abortSignal: ctx.signal } : {}),
        });
        verdict = result.output;
      } catch (error) {
        if (ctx.signal?.aborted) {
          throw new GateError("gate_aborted", "reviewer", "cancelled", "nothing to fix", {
            cause: error,
          });
        }
        // No verdict is not an approval: the ratchet fails closed.
        return outcome(
          "reviewer",
          started,
          false,
          `reviewer gave no usable verdict: ${(error as Error).message.slice(0, 300)}`,
        );
      }
      const reasons = verdict.reasons.map((r) => `- ${r}`).join("\n") || "- (no reasons given)";
      return outcome(
        "reviewer",
        started,
        verdict.verdict === "approve",
        `reviewer ${verdict.verdict === "approve" ? "approved" : "rejected"} the change:\n${reasons}`,
      );
    },
  };
}
