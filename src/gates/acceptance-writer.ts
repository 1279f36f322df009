import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, Output } from "ai";
import { z } from "zod";
import { NightshiftError } from "../errors/index.ts";
import { gitIn } from "./diff.ts";
import type { GateModelEndpoint, GateOrder } from "./types.ts";

/** Marks the acceptance writer's request, so a simulator policy can tell it from an agent's. */
export const ACCEPTANCE_WRITER_MARKER =
  "You write hidden acceptance scenarios for one work order of nightshift.";

/** At most this many scenarios per draft, each at most this big (as for scenarios a person gives). */
export const MAX_DRAFTED_SCENARIOS = 5;
const MAX_SCENARIO_BYTES = 256 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const draftedScenariosSchema = z.object({
  scenarios: z
    .array(z.object({ name: z.string(), content: z.string() }))
    .min(1)
    .max(MAX_DRAFTED_SCENARIOS),
});

export interface DraftedScenario {
  name: string;
  content: string;
}

export interface AcceptanceWriterOptions {
  order: GateOrder;
  /** Model name at the gateway. */
  model: string;
  /** The endpoint (through the gateway, metered) the writer asks. */
  endpoint: GateModelEndpoint;
  /** The configured holdout command, e.g. `node --test --test-reporter=tap {file}`. */
  command: string;
  /** Where the gate writes scenarios in the candidate's copy ([gates.holdout] target). */
  target: string;
  /** What the repository's own tests look like (see `testConventions`). */
  conventions: string;
  signal?: AbortSignal;
}

/**
 * Asks a model, apart from any worker, to turn an order's acceptance criteria into hidden scenario
 * files for the holdout command. What it writes goes to the ledger as drafts for a person to
 * approve; it is never shown to an agent. An answer that is not a set of usable files is refused
 * with the reason, so the caller stores nothing.
 */
export async function draftAcceptance(
  options: AcceptanceWriterOptions,
): Promise<DraftedScenario[]> {
  const { order } = options;
  const provider = createOpenAICompatible({
    name: "nightshift-acceptance-writer",
    baseURL: options.endpoint.baseURL,
    apiKey: options.endpoint.apiKey,
    includeUsage: true,
  });
  let drafted: z.infer<typeof draftedScenariosSchema>;
  try {
    const result = await generateText({
      model: provider.chatModel(options.model),
      system: systemPrompt(options),
      prompt: [
        `Work order WO-${order.id}: ${order.title}`,
        "",
        order.spec || "(no specification beyond the title)",
        "",
        "Acceptance criteria:",
        order.acceptance,
        "",
        "The repository's tests:",
        options.conventions,
      ].join("\n"),
      output: Output.object({ schema: draftedScenariosSchema }),
      maxRetries: 1,
      ...(options.signal ? { abortSignal: options.signal } : {}),
    });
    drafted = result.output;
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw unusable(
      `the model gave no usable scenarios: ${(error as Error).message.slice(0, 300)}`,
      {
        cause: error,
      },
    );
  }
  return checkDrafts(drafted.scenarios);
}

/** The drafted files as the holdout gate needs them, or why they cannot be used. */
export function checkDrafts(scenarios: DraftedScenario[]): DraftedScenario[] {
  const seen = new Set<string>();
  for (const s of scenarios) {
    if (!NAME.test(s.name)) {
      throw unusable(
        `scenario name ${JSON.stringify(s.name.slice(0, 120))} is not a plain file name (letters, digits, '.', '_', '-')`,
      );
    }
    if (seen.has(s.name)) throw unusable(`two scenarios are named ${JSON.stringify(s.name)}`);
    seen.add(s.name);
    if (!s.content.trim()) throw unusable(`scenario ${JSON.stringify(s.name)} is empty`);
    if (Buffer.byteLength(s.content) > MAX_SCENARIO_BYTES) {
      throw unusable(`scenario ${JSON.stringify(s.name)} is over ${MAX_SCENARIO_BYTES} bytes`);
    }
  }
  return scenarios;
}

function unusable(message: string, options: { cause?: unknown } = {}): NightshiftError {
  return new NightshiftError("acceptance_draft_unusable", `${message}; nothing was stored`, {
    hint: "run `nightshift draft-acceptance` again (perhaps with --model), or give the order its scenarios yourself (`nightshift add --holdout`, or files in <holdout dir>/orders/<key>/)",
    ...(options.cause !== undefined ? { cause: options.cause } : {}),
  });
}

function systemPrompt(options: AcceptanceWriterOptions): string {
  const perFile = options.command.includes("{file}");
  return `${ACCEPTANCE_WRITER_MARKER}
Another agent will implement the order without ever seeing your scenarios; they decide whether its
change is accepted. Write 1 to ${MAX_DRAFTED_SCENARIOS} small test files that pass exactly when the order's acceptance
criteria hold, in the style and framework of the repository's own tests.
They run in a copy of the repository: each file is written into the folder ${JSON.stringify(options.target)}
at its root (so the repository root is ".." from a scenario), and the command
${JSON.stringify(options.command)} runs from the root${perFile ? ", once per file ({file} is the scenario's path)" : ""}.
Give each check a name that says what it expects: a failing check's name is what the other agent
is told. Use plain file names (letters, digits, '.', '_', '-').
Answer with JSON only: {"scenarios": [{"name": "file name", "content": "the file's source"}, ...]}.`;
}

/**
 * What the repository's tests look like, from its committed tree at `ref`: the test command in
 * package.json, the paths of its test files, and the start of one of them.
 */
export async function testConventions(repoPath: string, ref = "HEAD"): Promise<string> {
  const files = (await gitIn(repoPath, ["ls-tree", "-r", "--name-only", ref]).catch(() => ""))
    .split("\n")
    .filter(Boolean);
  const tests = files.filter((f) =>
    /(^|\/)(test|tests|__tests__|spec)\/|\.(test|spec)\.[cm]?[jt]sx?$|_test\.(go|py)$|(^|\/)test_[^/]*\.py$/.test(
      f,
    ),
  );
  const lines: string[] = [];
  if (files.includes("package.json")) {
    const pkg = await gitIn(repoPath, ["show", `${ref}:package.json`]).catch(() => "");
    const scripts = /"test"\s*:\s*("(?:[^"\\]|\\.)*")/.exec(pkg);
    if (scripts?.[1]) lines.push(`package.json test script: ${scripts[1]}`);
  }
  lines.push(
    tests.length > 0
      ? `test files: ${tests.slice(0, 30).join(", ")}${tests.length > 30 ? `, and ${tests.length - 30} more` : ""}`
      : "(the repository has no test files yet)",
  );
  const example = tests[0];
  if (example) {
    const text = await gitIn(repoPath, ["show", `${ref}:${example}`]).catch(() => "");
    lines.push(
      `${example}:`,
      "```",
      text.length > 3000 ? `${text.slice(0, 3000)}\n[... cut ...]` : text,
      "```",
    );
  }
  return lines.join("\n");
}
