import type { FactoryConfig } from "../config/index.ts";
import type { SandboxLimitsNote } from "../sandbox/index.ts";
import type { Check } from "./preflight.ts";

/**
 * `doctor`'s line on the sandbox's limits: which ones the kernel enforces from outside on this
 * host and which it does not, and why. It fails where the self-test would (no kernel cap on
 * processes); a missing memory or cpu controller is said, not failed.
 */
export async function sandboxLimitsCheck(config: FactoryConfig): Promise<Check> {
  const subject = "sandbox limits";
  if (config.sandbox.backend !== "bubblewrap") {
    return {
      subject,
      ok: true,
      detail: `backend ${config.sandbox.backend}: nightshift sets no limits of its own`,
    };
  }
  const { BubblewrapBackend, SandboxError } = await import("../sandbox/index.ts");
  try {
    const note = await new BubblewrapBackend().limitsNote();
    return {
      subject,
      ok: note.enforced.includes("processes"),
      detail: describeLimits(note),
      ...(note.missing
        ? {
            hint: "give nightshift a writable cgroup: run it as root, or in a delegated cgroup v2 group (systemd-run --user --scope -p Delegate=yes nightshift run); see docs/sandbox.md",
          }
        : {}),
    };
  } catch (error) {
    if (!(error instanceof SandboxError)) throw error;
    return { subject, ok: false, detail: error.detail, hint: error.hint };
  }
}

export function describeLimits(note: SandboxLimitsNote): string {
  const held = `enforced from outside the sandbox: ${note.enforced.join(", ")}`;
  const relay = note.relay ? `; gateway relay: ${note.relay}` : "";
  return (note.missing ? `${held}; NOT enforced: ${note.missing}` : held) + relay;
}
