import { openFactory } from "../factory.ts";
import { checkFactory, formatChecks } from "../preflight.ts";
import { sandboxLimitsCheck } from "../sandbox-check.ts";

/**
 * Runs the pre-flight check `run` makes and prints every finding; exit code 1 if any failed.
 * It claims nothing: an order never loses an attempt to a broken setup.
 */
export async function doctorCommand(root: string, print: (line: string) => void): Promise<number> {
  const factory = await openFactory(root, "nightshift doctor");
  try {
    const checks = [...(await checkFactory(factory)), await sandboxLimitsCheck(factory.config)];
    for (const line of formatChecks(checks)) print(line);
    const failures = checks.filter((check) => !check.ok).length;
    print(
      failures === 0
        ? "all checks passed: `nightshift run` can start"
        : `${failures} check${failures === 1 ? "" : "s"} failed: \`nightshift run\` would refuse to start`,
    );
    return failures === 0 ? 0 : 1;
  } finally {
    await factory.close();
  }
}
