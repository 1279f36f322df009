import { safeJson } from "../protocols/index.ts";

/** The last model request of a run that failed for a reason outside the agent's control. */
export interface ModelFailure {
  /** HTTP status the agent got. */
  status: number;
  /** "gateway": nightshift refused (no route, unknown price); "provider": the upstream answered with an error or could not be reached. */
  from: "gateway" | "provider";
  /** The gateway's or the provider's own words. */
  message: string;
  /** Every later request would fail the same way (auth, unknown model, no route, unreachable). */
  blocking: boolean;
}

/**
 * The provider's own message out of its error body: Anthropic, OpenAI and Gemini all put it in
 * `error.message`; anything else is shown as the start of the text.
 */
export function providerMessage(text: string, status: number): string {
  const body = safeJson(text) as
    | { error?: { message?: unknown } | string; message?: unknown }
    | undefined;
  const error = body?.error;
  const message =
    typeof error === "object" && typeof error?.message === "string"
      ? error.message
      : typeof error === "string"
        ? error
        : typeof body?.message === "string"
          ? body.message
          : text.trim().slice(0, 300);
  return `${status}${message ? `: ${message}` : ""}`;
}
