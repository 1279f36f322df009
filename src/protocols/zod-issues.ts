import type { z } from "zod";
import { ProtocolError } from "./errors.ts";

/** `messages[0].content` style path, as error messages and the `param` field name it. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(body)" : out;
}

/** zod's wording, except that a missing field says "is required" rather than "received undefined". */
export function issueText(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.message.endsWith("received undefined")) {
    return `is required (${issue.expected})`;
  }
  return issue.message;
}

/**
 * A union's own issue only says "none of the options matched". When the value had the right shape
 * for one option (e.g. it is an array) and failed deeper inside, that option's issues are the useful
 * ones, so they replace the union's.
 */
function unwrapUnions(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== "invalid_union") return [issue];
    const branch = issue.errors.find(
      (branchIssues) =>
        branchIssues.length > 0 &&
        !branchIssues.some((i) => i.path.length === 0 && i.code === "invalid_type"),
    );
    if (!branch) return [issue];
    return unwrapUnions(branch.map((i) => ({ ...i, path: [...issue.path, ...i.path] })));
  });
}

/** Up to three issues as one sentence, plus the path of the first for the error's `param`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): {
  message: string;
  param: string | null;
} {
  const shown = unwrapUnions(issues).slice(0, 3);
  const first = shown[0];
  return {
    message: shown.map((i) => `${formatPath(i.path)}: ${issueText(i)}`).join("; "),
    param: first ? formatPath(first.path) : null,
  };
}

/** Parses with `schema` or throws ProtocolError("invalid_request") whose message starts with `what`. */
export function parseOrThrow<T extends z.ZodType>(
  schema: T,
  body: unknown,
  what: string,
): z.output<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const { message, param } = describeIssues(result.error.issues);
  throw new ProtocolError("invalid_request", `Invalid ${what}: ${message}`, param);
}

/**
 * Checks `value` against the schema for its `type` and reports failures at the right path. Used for
 * block and item lists where unknown types must pass: providers add new block types often, and a
 * proxy or simulator that rejected them would break clients the real API serves.
 */
export function refineByType(
  schemas: Readonly<Record<string, z.ZodType>>,
  value: { type?: unknown },
  ctx: z.core.$RefinementCtx,
  typeWhenMissing?: string,
): void {
  const type = typeof value.type === "string" ? value.type : typeWhenMissing;
  const schema = type === undefined ? undefined : schemas[type];
  if (!schema) return;
  const result = schema.safeParse(value);
  if (result.success) return;
  for (const issue of result.error.issues) {
    ctx.addIssue({ code: "custom", message: issueText(issue), path: [...issue.path] });
  }
}
