// Apart from registry.ts so that checking an order's driver (orders/intake.ts, in every `add`)
// does not load every driver's module.
export const DRIVER_NAMES = ["builtin", "claude-code", "codex", "opencode", "gemini-cli"] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];
