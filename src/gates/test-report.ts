import YAML from "yaml";

/** One failing check found in a test runner's output, in the words an agent can act on. */
export interface FailingCheck {
  name: string;
  /** file:line of the check, relative to the workspace when it lies inside it. */
  where?: string;
  expected?: string;
  observed?: string;
  /** The assertion's own message (what the runner printed as the error). */
  message: string;
  /** Stack frames outside the runner's internals, innermost first. */
  frames: string[];
}

export interface TestReport {
  failing: FailingCheck[];
  /** From the runner's summary ("# tests 50"), when it printed one. */
  total?: number;
}

const NOT_OK = /^(\s*)not ok \d+ - (.*?)(?:\s+#\s*(?:TODO|SKIP).*)?$/;
const SUMMARY_TESTS = /^# tests (\d+)$/;
const MAX_VALUE_CHARS = 300;

/**
 * The failing checks of TAP output (node --test's reporter when not on a terminal, and many
 * others'). A parent that failed only because its subtests did (node's "subtestsFailed", a test
 * file wrapping its tests) is left out: its failing subtests say more. Output that is not TAP gives
 * no checks, and the caller falls back to an excerpt.
 */
export function parseTestReport(output: string, root?: string): TestReport {
  const lines = output.split(/\r?\n/);
  const failing: FailingCheck[] = [];
  let total: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const summary = SUMMARY_TESTS.exec(line);
    if (summary) total = Number(summary[1]);
    const match = NOT_OK.exec(line);
    if (!match) continue;
    const indent = match[1]?.length ?? 0;
    const { block, end } = yamlBlock(lines, i + 1, indent);
    i = end;
    if (block.failureType === "subtestsFailed") continue;
    failing.push(checkOf(match[2] ?? "", block, root));
  }
  return { failing, ...(total !== undefined ? { total } : {}) };
}

/** The YAML diagnostics block (`---` ... `...`) right after a test line, if there is one. */
function yamlBlock(
  lines: string[],
  start: number,
  indent: number,
): { block: Record<string, unknown>; end: number } {
  const open = lines[start] ?? "";
  const depth = (line: string) => line.length - line.trimStart().length;
  if (open.trim() !== "---" || depth(open) <= indent) {
    // No YAML block: diagnostics indented under the test line are its message.
    let i = start;
    while (i < lines.length && (lines[i] ?? "").trim() && depth(lines[i] ?? "") > indent) i++;
    const text = lines.slice(start, i).map((l) => l.trim());
    return { block: text.length > 0 ? { error: text.join("\n") } : {}, end: i - 1 };
  }
  const pad = depth(open);
  const body: string[] = [];
  let i = start + 1;
  for (; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.trim() === "..." && line.length - line.trimStart().length === pad) break;
    body.push(line.slice(pad));
  }
  try {
    const parsed: unknown = YAML.parse(body.join("\n"));
    return {
      block: parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {},
      end: i,
    };
  } catch {
    return { block: { error: body.join("\n") }, end: i };
  }
}

function checkOf(
  name: string,
  block: Record<string, unknown>,
  root: string | undefined,
): FailingCheck {
  const text = (value: unknown) => relative(shown(value), root);
  const check: FailingCheck = {
    name: name.trim(),
    message: text(block.error ?? "").trim(),
    frames: stackFrames(typeof block.stack === "string" ? block.stack : "", root),
  };
  if (typeof block.location === "string")
    check.where = relative(block.location, root).replace(/:\d+$/, "");
  if ("expected" in block) check.expected = text(block.expected);
  if ("actual" in block) check.observed = text(block.actual);
  return check;
}

/** Frames that point at the project's code, not at the runner's or node's internals. */
function stackFrames(stack: string, root: string | undefined): string[] {
  return stack
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/\(node:|^node:|node_modules/.test(l))
    .map((l) => relative(l, root))
    .slice(0, 3);
}

function shown(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}...` : text;
}

/** Paths inside the workspace, as the agent knows them (relative to its current directory). */
export function relative(text: string, root: string | undefined): string {
  if (!root) return text;
  const base = root.endsWith("/") ? root : `${root}/`;
  return text.replaceAll(`file://${base}`, "").replaceAll(base, "");
}
