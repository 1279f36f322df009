/**
 * Only these host variables reach a sandboxed command: commands run candidate code, which must not
 * see the host's secrets. Anything else a command needs is passed explicitly.
 */
const INHERITED_ENV = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"] as const;
const BASE_ENV = { CI: "1", NO_COLOR: "1" };

/** The allow-listed host variables plus CI=1 and NO_COLOR=1, with `extra` layered on top. */
export function scrubbedEnv(extra?: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...BASE_ENV };
  for (const key of INHERITED_ENV) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}
