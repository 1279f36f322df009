import { SandboxError } from "./errors.ts";
import { findProgram } from "./find-program.ts";
import type { RunSandbox, SandboxBackend, SandboxSpec } from "./types.ts";

export const CONTAINER_INSTALL_HINT =
  'install podman (`sudo apt-get install podman`) or docker and make sure its engine runs, or use [sandbox] backend = "bubblewrap" (the default on Linux)';

/**
 * Podman or docker, for hosts where bubblewrap is not wanted. It finds the engine and checks that
 * it answers; running runs inside it is not implemented yet (see docs/sandbox.md): until then it
 * fails with a clear error rather than pretending to isolate.
 */
export class ContainerBackend implements SandboxBackend {
  readonly name = "container" as const;
  readonly engine: string;

  constructor(options: { engine?: "podman" | "docker" } = {}) {
    const candidates = options.engine ? [options.engine] : (["podman", "docker"] as const);
    const found = candidates.map((name) => findProgram(name)).find(Boolean);
    if (!found) {
      throw new SandboxError(
        "backend_missing",
        `no container engine found (looked for ${candidates.join(" and ")} on PATH)`,
        CONTAINER_INSTALL_HINT,
      );
    }
    this.engine = found;
  }

  async create(_spec: SandboxSpec): Promise<RunSandbox> {
    throw new SandboxError(
      "backend_unavailable",
      `the container backend (${this.engine}) cannot run sandboxes yet`,
      'use [sandbox] backend = "bubblewrap"; the container backend is planned (docs/sandbox.md)',
    );
  }
}
