import { BubblewrapBackend } from "./bubblewrap.ts";
import { ContainerBackend } from "./container.ts";
import { SandboxError } from "./errors.ts";
import { NoSandboxBackend } from "./none.ts";
import type { SandboxBackend, SandboxBackendName, SandboxLimits } from "./types.ts";

export interface SandboxSettings {
  backend: SandboxBackendName;
  /** backend "none" is refused unless this is true. */
  allowUnsandboxed?: boolean;
  limits?: Partial<SandboxLimits>;
  readOnlyPaths?: string[];
  engine?: "podman" | "docker";
}

/** The configured backend; a missing program is a SandboxError with the install command. */
export function createSandboxBackend(settings: SandboxSettings): SandboxBackend {
  switch (settings.backend) {
    case "bubblewrap":
      return new BubblewrapBackend({
        ...(settings.limits ? { limits: settings.limits } : {}),
        ...(settings.readOnlyPaths ? { readOnlyPaths: settings.readOnlyPaths } : {}),
      });
    case "container":
      return new ContainerBackend(settings.engine ? { engine: settings.engine } : {});
    case "none":
      if (!settings.allowUnsandboxed) {
        throw new SandboxError(
          "invalid_sandbox_spec",
          'sandbox backend "none" runs agents without isolation',
          'if you really mean it, also set allow_unsandboxed = true in [sandbox]; otherwise use backend = "bubblewrap"',
        );
      }
      return new NoSandboxBackend();
    default: {
      const unknown: never = settings.backend;
      throw new SandboxError(
        "invalid_sandbox_spec",
        `unknown sandbox backend ${JSON.stringify(unknown)}`,
        'use "bubblewrap", "container" or "none"',
      );
    }
  }
}
