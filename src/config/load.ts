import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import type { z } from "zod";
import { NightshiftError } from "../errors/index.ts";
import { configSchema, type FactoryConfig } from "./schema.ts";

export const CONFIG_FILE = "nightshift.toml";

export class ConfigError extends NightshiftError {
  constructor(
    code: "config_missing" | "config_syntax" | "config_invalid",
    message: string,
    options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = "ConfigError";
  }
}

export interface LoadedConfig {
  config: FactoryConfig;
  /** Absolute path of the file read, or null when defaults were used. */
  file: string | null;
  /** The repository the factory works on: the folder holding nightshift.toml. */
  root: string;
}

export async function loadConfig(root: string, options: { required?: boolean } = {}) {
  const file = path.resolve(root, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    if (options.required) {
      throw new ConfigError("config_missing", `no ${CONFIG_FILE} in ${path.resolve(root)}`, {
        hint: "run `nightshift init` in the repository to write one",
      });
    }
    return { config: configSchema.parse({}), file: null, root: path.resolve(root) };
  }
  return { config: parseConfig(text, file), file, root: path.resolve(root) };
}

/** Parses and validates the text of a nightshift.toml; `source` names it in errors. */
export function parseConfig(text: string, source = CONFIG_FILE): FactoryConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      throw new ConfigError(
        "config_syntax",
        `${source}:${error.line}:${error.column}: not valid TOML: ${firstLine(error.message)}`,
        { hint: "fix the syntax at that line (strings need quotes, tables look like [line])" },
      );
    }
    throw error;
  }
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue, raw));
  throw new ConfigError(
    "config_invalid",
    `${source} is invalid:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    {
      hint: "correct the keys above; `nightshift init --print` shows every key with its default",
      details: { problems },
    },
  );
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const where = keyName(issue.path);
  if (issue.code === "unrecognized_keys") {
    const section = issue.path.length > 0 ? `[${issue.path.join(".")}]` : "the top level";
    return issue.keys
      .map((key) => {
        const known = knownKeys(issue.path);
        const guess = closest(key, known);
        const suggestion = guess ? ` (did you mean "${guess}"?)` : "";
        return `${section}: unknown key "${key}"${suggestion}; known keys: ${known.join(", ")}`;
      })
      .join("\n  - ");
  }
  const got = valueAt(raw, issue.path);
  const shown = got === undefined ? "" : ` (got ${JSON.stringify(got)})`;
  return `${where}: ${issue.message}${shown}`;
}

function keyName(keyPath: PropertyKey[]): string {
  if (keyPath.length === 0) return "the file";
  const [section, ...rest] = keyPath.map(String);
  // Named tables read as they are written: [providers.openrouter] kind, not [providers] openrouter.kind.
  if ((section === "providers" || section === "models") && rest.length > 1) {
    const [name, ...key] = rest;
    return `[${section}.${name}] ${key.join(".")}`;
  }
  return rest.length === 0 ? `[${section}]` : `[${section}] ${rest.join(".")}`;
}

function knownKeys(keyPath: PropertyKey[]): string[] {
  let node: unknown = configSchema.parse({});
  for (const part of keyPath) node = (node as Record<PropertyKey, unknown>)?.[part];
  const keys = node && typeof node === "object" ? Object.keys(node) : [];
  // Optional keys without a default do not appear in the parsed defaults.
  keys.push(...(OPTIONAL_KEYS[String(keyPath[0])] ?? []));
  return keys.sort();
}

const OPTIONAL_KEYS: Record<string, string[]> = {
  model: ["base_url"],
  providers: ["kind", "base_url", "api_key_env", "models", "protocols", "auth", "query"],
  budget: ["max_usd_per_run", "max_usd_per_order", "max_usd_per_day", "max_usd_total"],
  gateway: ["prices_file"],
};

function valueAt(raw: unknown, keyPath: PropertyKey[]): unknown {
  let node = raw;
  for (const part of keyPath) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

/** The known key nearest to a misspelt one, if it is near enough to be a plausible typo. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(word.length / 3))
    ? best.candidate
    : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? text;
}
