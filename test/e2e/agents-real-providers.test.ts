import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AgentDriver,
  BuiltinAgent,
  claudeCodeDriver,
  codexDriver,
  geminiCliDriver,
} from "../../src/agents/index.ts";
import type { ProtocolName } from "../../src/config/providers.ts";
import {
  type DriverRun,
  makeWorkspace,
  metering,
  ofKind,
  runDriver,
  usageOf,
  workspaceStatus,
} from "../support/agents.ts";
import {
  type FakeProvider,
  type FakeScript,
  type FakeTurn,
  lastToolResult,
  protocolOf,
  type RecordedRequest,
  startFakeAnthropic,
  startFakeGemini,
  startFakeOpenAI,
  startFakeOpenAICompatible,
  toolNames,
  type WireProtocol,
} from "../support/fake-providers.ts";
import {
  benchPrices,
  PROVIDER_KEY,
  type ProviderBench,
  type ProviderBenchOptions,
  startProviderBench,
} from "../support/provider-bench.ts";

// Real Claude Code, Codex and Gemini CLI (the devDependencies), on the host, through the gateway,
// against fakes of the real providers (test/support/fake-providers.ts) instead of the simulator:
// natively where the provider speaks the agent's protocol, translated where it does not.
let bench: ProviderBench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const SUMMARY = "Done: notes/hello.txt created, a command run, README.md edited.";
const COMMAND =
  "node -e \"require('fs').writeFileSync('made-by-command.txt', process.version)\" && echo command-ran";

/** One turn of a scripted session: what the previous tool result must contain, and the reply. */
interface Step {
  name: string;
  after?: string;
  reply: FakeTurn;
}

/** How many tool calls the model made so far in the conversation a request carries. */
function callsSoFar(request: RecordedRequest): number {
  const body = request.body ?? {};
  const count = (items: unknown, pick: (item: Record<string, unknown>) => number) =>
    Array.isArray(items)
      ? items.reduce<number>(
          (sum, item) =>
            sum + (item && typeof item === "object" ? pick(item as Record<string, unknown>) : 0),
          0,
        )
      : 0;
  const parts = (list: unknown, test: (part: Record<string, unknown>) => boolean) =>
    count(list, (part) => (test(part) ? 1 : 0));
  switch (protocolOf(request)) {
    case "anthropic":
      return count(body.messages, (m) => parts(m.content, (b) => b.type === "tool_use"));
    case "chat":
      return count(body.messages, (m) => (Array.isArray(m.tool_calls) ? m.tool_calls.length : 0));
    case "responses":
      return parts(body.input, (item) => item.type === "function_call");
    case "gemini":
      return count(body.contents, (c) =>
        parts(c.parts, (p) => p.functionCall !== undefined || p.function_call !== undefined),
      );
    default:
      return 0;
  }
}

/**
 * A session the fake plays: the step is picked by how many tool calls the request's conversation
 * already holds (so a retried request gets the same answer), after checking the last tool result.
 * A request without the session's tools is a side request (a title, a check): it gets plain text.
 */
function session(steps: () => Step[], sessionTools: string[]) {
  const main: RecordedRequest[] = [];
  const side: RecordedRequest[] = [];
  const script: FakeScript = (request) => {
    const offered = toolNames(request);
    if (!sessionTools.every((tool) => offered.includes(tool))) {
      side.push(request);
      return { text: "ok" };
    }
    main.push(request);
    const index = callsSoFar(request);
    const step = steps()[index];
    if (!step) return { fail: { status: 400, message: `the script has no step ${index}` } };
    const result = lastToolResult(request) ?? "";
    if (step.after !== undefined && !result.includes(step.after))
      return {
        fail: {
          status: 400,
          message: `step "${step.name}" expected the last tool result to contain ${JSON.stringify(step.after)}, saw ${JSON.stringify(result.slice(0, 300))}`,
        },
      };
    return step.reply;
  };
  return { script, main, side };
}

/** Claude Code's session: Write, Bash, Read (Edit wants the file read first), Edit, report. */
function claudeSteps(ws: string): Step[] {
  return [
    {
      name: "create a file",
      reply: {
        text: "I will add the notes file first.",
        toolCalls: [
          {
            name: "Write",
            arguments: { file_path: path.join(ws, "notes/hello.txt"), content: "hello\n" },
          },
        ],
      },
    },
    {
      name: "run a command",
      after: "notes/hello.txt",
      reply: {
        toolCalls: [{ name: "Bash", arguments: { command: COMMAND, description: "write a file" } }],
      },
    },
    {
      name: "read before editing",
      after: "command-ran",
      reply: {
        toolCalls: [{ name: "Read", arguments: { file_path: path.join(ws, "README.md") } }],
      },
    },
    {
      name: "edit the readme",
      after: "Hello from the sample project.",
      reply: {
        toolCalls: [
          {
            name: "Edit",
            arguments: {
              file_path: path.join(ws, "README.md"),
              old_string: "Hello from the sample project.",
              new_string: "Hello from a real provider, through the gateway.",
            },
          },
        ],
      },
    },
    { name: "report", after: "README.md", reply: { text: SUMMARY } },
  ];
}

/** Gemini CLI's session, with its own tool names. */
function geminiSteps(ws: string): Step[] {
  return [
    {
      name: "create a file",
      reply: {
        text: "I will add the notes file first.",
        toolCalls: [
          {
            name: "write_file",
            arguments: { file_path: path.join(ws, "notes/hello.txt"), content: "hello\n" },
          },
        ],
      },
    },
    {
      name: "run a command",
      after: "notes/hello.txt",
      reply: {
        toolCalls: [
          {
            name: "run_shell_command",
            arguments: { command: COMMAND, description: "write a file" },
          },
        ],
      },
    },
    {
      name: "read before editing",
      after: "command-ran",
      reply: {
        toolCalls: [{ name: "read_file", arguments: { file_path: path.join(ws, "README.md") } }],
      },
    },
    {
      name: "edit the readme",
      after: "Hello from the sample project.",
      reply: {
        toolCalls: [
          {
            name: "replace",
            arguments: {
              file_path: path.join(ws, "README.md"),
              instruction: "Greet from a real provider instead of the sample project.",
              old_string: "Hello from the sample project.",
              new_string: "Hello from a real provider, through the gateway.",
            },
          },
        ],
      },
    },
    { name: "report", after: "README.md", reply: { text: SUMMARY } },
  ];
}

/** Codex's session: for gpt-5 it offers exec_command (no patch tool), so everything is a command. */
function codexSteps(): Step[] {
  const exec = (cmd: string): FakeTurn["toolCalls"] => [
    { name: "exec_command", arguments: { cmd } },
  ];
  return [
    {
      name: "create a file",
      reply: {
        text: "I will add the notes file first.",
        toolCalls: exec("mkdir -p notes && printf 'hello\\n' > notes/hello.txt && echo created"),
      },
    },
    { name: "run a command", after: "created", reply: { toolCalls: exec(COMMAND) } },
    { name: "read the readme", after: "command-ran", reply: { toolCalls: exec("cat README.md") } },
    {
      name: "edit the readme",
      after: "Hello from the sample project.",
      reply: {
        toolCalls: exec(
          "sed -i 's/Hello from the sample project./Hello from a real provider, through the gateway./' README.md && echo edited",
        ),
      },
    },
    { name: "report", after: "edited", reply: { text: SUMMARY } },
  ];
}

/** The built-in agent's session, with its workspace tools (paths relative to the workspace). */
function builtinSteps(): Step[] {
  return [
    {
      name: "create a file",
      reply: {
        text: "I will add the notes file first.",
        toolCalls: [
          { name: "write_file", arguments: { path: "notes/hello.txt", content: "hello\n" } },
        ],
      },
    },
    {
      name: "run a command",
      after: "notes/hello.txt",
      reply: { toolCalls: [{ name: "run_command", arguments: { command: COMMAND } }] },
    },
    {
      name: "read before editing",
      after: "command-ran",
      reply: { toolCalls: [{ name: "read_file", arguments: { path: "README.md" } }] },
    },
    {
      name: "edit the readme",
      after: "Hello from the sample project.",
      reply: {
        toolCalls: [
          {
            name: "edit_file",
            arguments: {
              path: "README.md",
              old_string: "Hello from the sample project.",
              new_string: "Hello from a real provider, through the gateway.",
            },
          },
        ],
      },
    },
    { name: "report", after: "README.md", reply: { text: SUMMARY } },
  ];
}

/** The key checks every provider must pass: its own auth header with its key, never the run's. */
function expectProviderAuth(fake: FakeProvider, protocol: WireProtocol): void {
  expect(fake.requests.length).toBeGreaterThan(0);
  for (const request of fake.requests) {
    const { authorization, "x-api-key": apiKey, "x-goog-api-key": googKey } = request.headers;
    if (protocol === "anthropic") {
      expect(apiKey).toBe(PROVIDER_KEY);
      expect(authorization).toBeUndefined();
    } else if (protocol === "gemini") {
      expect(googKey).toBe(PROVIDER_KEY);
      expect(authorization).toBeUndefined();
      expect(request.url).not.toContain("key=");
    } else {
      expect(authorization).toBe(`Bearer ${PROVIDER_KEY}`);
      expect(apiKey).toBeUndefined();
    }
    // The run's scoped key (nsk-run<id>-…) stays between the agent and the gateway.
    expect(JSON.stringify(request.headers) + request.url).not.toMatch(/nsk-run\d+-/);
  }
}

interface Expected {
  /** The protocol the agent speaks, as the ledger records it. */
  clientProtocol: ProtocolName;
  /** The protocol the fake was spoken to in. */
  upstreamProtocol: WireProtocol;
  /** The model name the fake saw. */
  upstreamModel: string;
  /** The price-table entry the spend is charged at: the provider's model when it is priced. */
  pricedAs: string;
}

/**
 * Metering: every model request the gateway forwarded is in the ledger once, with exactly the
 * tokens the provider reported; the agent's own account agrees; nothing else left the machine.
 */
async function expectMetered(b: ProviderBench, run: DriverRun, expected: Expected, model: string) {
  const metered = await metering(b, run.runId);
  const modelRequests = b.fake.requests.filter(
    (r) =>
      !r.path.endsWith("/count_tokens") && !r.path.endsWith(":countTokens") && r.method === "POST",
  );
  expect(metered.requests).toBe(b.fake.reported.requests);
  expect(metered.requests).toBe(modelRequests.length);
  expect(metered.inputTokens).toBe(b.fake.reported.inputTokens);
  expect(metered.outputTokens).toBe(b.fake.reported.outputTokens);
  expect(metered.inputTokens).toBeGreaterThan(0);
  expect(metered.outputTokens).toBeGreaterThan(0);
  expect(
    metered.rows.map((r) => ({
      status: r.status,
      protocol: r.protocol,
      model: r.model,
      estimated: r.usage_estimated,
    })),
  ).toEqual(
    metered.rows.map(() => ({
      status: 200,
      protocol: expected.clientProtocol,
      model,
      estimated: false,
    })),
  );
  expect(metered.rows.every((r) => r.cost_usd > 0)).toBe(true);
  const cost = metered.rows.reduce((sum, r) => sum + r.cost_usd, 0);
  expect(cost).toBeCloseTo(benchPrices.costOf(expected.pricedAs, metered) ?? Number.NaN, 9);
  for (const request of modelRequests) {
    expect(protocolOf(request)).toBe(expected.upstreamProtocol);
    const named =
      expected.upstreamProtocol === "gemini"
        ? decodeURIComponent(/\/models\/([^/:]+):/.exec(request.path)?.[1] ?? "")
        : request.body?.model;
    expect(named).toBe(expected.upstreamModel);
  }
  expect(usageOf(run.events)).toEqual({
    inputTokens: metered.inputTokens,
    outputTokens: metered.outputTokens,
  });
  expectProviderAuth(b.fake, expected.upstreamProtocol);
  expect(b.trap.attempts).toEqual([]);
  return metered;
}

/** The diff every session leaves: exactly what it was scripted to do. */
async function expectDiff(ws: string): Promise<void> {
  expect(workspaceStatus(ws)).toEqual([
    " M README.md",
    "?? made-by-command.txt",
    "?? notes/hello.txt",
  ]);
  expect(await readFile(path.join(ws, "README.md"), "utf8")).toBe(
    "# Sample\n\nHello from a real provider, through the gateway.\n",
  );
  expect(await readFile(path.join(ws, "notes/hello.txt"), "utf8")).toBe("hello\n");
  expect(await readFile(path.join(ws, "made-by-command.txt"), "utf8")).toMatch(/^v\d+/);
}

/** Normalized events: the scripted calls, each with a successful result, the two messages, no error. */
function expectEvents(
  run: DriverRun,
  tools: string[],
  warnings: string[],
  fileChanges = ["created made-by-command.txt", "created notes/hello.txt", "modified README.md"],
): void {
  const calls = ofKind(run.events, "tool_call");
  expect(calls.map((c) => c.tool)).toEqual(tools);
  const results = ofKind(run.events, "tool_result");
  expect(results.map((r) => [r.callId, r.isError])).toEqual(calls.map((c) => [c.callId, false]));
  expect(results.some((r) => r.output.includes("command-ran"))).toBe(true);
  expect(ofKind(run.events, "message").map((m) => m.text)).toEqual([
    "I will add the notes file first.",
    SUMMARY,
  ]);
  expect(
    ofKind(run.events, "file_change")
      .map((c) => `${c.change} ${c.path}`)
      .sort(),
  ).toEqual(fileChanges);
  expect(ofKind(run.events, "error").map((e) => e.message)).toEqual(
    warnings.map((w) => expect.stringContaining(w)),
  );
}

type Agent = "claude-code" | "codex" | "gemini-cli" | "builtin";

function driverFor(agent: Agent, b: ProviderBench): AgentDriver {
  if (agent === "builtin") return new BuiltinAgent();
  const options = { homesDir: path.join(b.scratch, "homes"), env: b.env, wallTimeMs: 120_000 };
  if (agent === "claude-code") return claudeCodeDriver(options);
  if (agent === "codex") return codexDriver(options);
  return geminiCliDriver(options);
}

interface Case {
  title: string;
  agent: Agent;
  /** The model the agent is told to use. */
  model: string;
  provider: Omit<ProviderBenchOptions, "startFake">;
  startFake: (script: FakeScript) => Promise<FakeProvider>;
  expected: Expected;
}

const cases: Case[] = [
  {
    title: "Claude Code via anthropic (native Messages)",
    agent: "claude-code",
    model: "claude-sonnet-4-5",
    provider: { kind: "anthropic" },
    startFake: (script) => startFakeAnthropic({ apiKey: PROVIDER_KEY, script }),
    expected: {
      clientProtocol: "anthropic-messages",
      upstreamProtocol: "anthropic",
      upstreamModel: "claude-sonnet-4-5",
      pricedAs: "claude-sonnet-4-5",
    },
  },
  {
    title: "Gemini CLI via google (native Gemini API)",
    agent: "gemini-cli",
    model: "gemini-2.5-pro",
    provider: { kind: "google" },
    startFake: (script) => startFakeGemini({ apiKey: PROVIDER_KEY, script }),
    expected: {
      clientProtocol: "gemini",
      upstreamProtocol: "gemini",
      upstreamModel: "gemini-2.5-pro",
      pricedAs: "gemini-2.5-pro",
    },
  },
  {
    title: "Codex via openai (native Responses)",
    agent: "codex",
    model: "gpt-5",
    provider: { kind: "openai" },
    startFake: (script) => startFakeOpenAI({ apiKey: PROVIDER_KEY, script }),
    expected: {
      clientProtocol: "openai-responses",
      upstreamProtocol: "responses",
      upstreamModel: "gpt-5",
      pricedAs: "gpt-5",
    },
  },
  {
    title: "Claude Code via a Chat-only openai-compatible server (Messages translated to Chat)",
    agent: "claude-code",
    model: "claude-sonnet-4-5",
    provider: {
      kind: "openai-compatible",
      models: { "claude-sonnet-4-5": { model: "anthropic/claude-sonnet-4.5" } },
    },
    startFake: (script) => startFakeOpenAICompatible({ apiKey: PROVIDER_KEY, script }),
    expected: {
      clientProtocol: "anthropic-messages",
      upstreamProtocol: "chat",
      upstreamModel: "anthropic/claude-sonnet-4.5",
      // The provider's name for it is not in the price table: priced by the name the agent used.
      pricedAs: "claude-sonnet-4-5",
    },
  },
  {
    title: "the built-in agent via anthropic (Chat translated to Messages, as OpenCode's would be)",
    agent: "builtin",
    model: "claude-sonnet-4-5",
    provider: { kind: "anthropic" },
    startFake: (script) => startFakeAnthropic({ apiKey: PROVIDER_KEY, script }),
    expected: {
      clientProtocol: "openai-chat",
      upstreamProtocol: "anthropic",
      upstreamModel: "claude-sonnet-4-5",
      pricedAs: "claude-sonnet-4-5",
    },
  },
  {
    title: "Codex via anthropic (Responses translated to Messages)",
    agent: "codex",
    model: "gpt-5",
    provider: { kind: "anthropic", models: { "gpt-5": { model: "claude-sonnet-4-5" } } },
    startFake: (script) => startFakeAnthropic({ apiKey: PROVIDER_KEY, script }),
    expected: {
      clientProtocol: "openai-responses",
      upstreamProtocol: "anthropic",
      upstreamModel: "claude-sonnet-4-5",
      // Charged at the model actually served, not at the gpt-5 the agent asked for.
      pricedAs: "claude-sonnet-4-5",
    },
  },
];

interface Session {
  /** Tools the CLI offers in every request of the session. */
  tools: string[];
  steps: (ws: string) => Step[];
  /** The normalized tool calls the session makes. */
  calls: string[];
  /** Warnings the CLI reports as error events and carries on. */
  warnings: string[];
  /** The file changes the agent reports, when not all three the session makes. */
  fileChanges?: string[];
}

const SESSIONS: Record<Agent, Session> = {
  "claude-code": {
    tools: ["Write", "Edit", "Bash", "Read"],
    steps: claudeSteps,
    calls: ["Write", "Bash", "Read", "Edit"],
    warnings: [],
  },
  "gemini-cli": {
    tools: ["write_file", "replace", "run_shell_command", "read_file"],
    steps: geminiSteps,
    calls: ["write_file", "run_shell_command", "read_file", "replace"],
    warnings: [],
  },
  builtin: {
    tools: ["write_file", "edit_file", "run_command", "read_file"],
    steps: () => builtinSteps(),
    calls: ["write_file", "run_command", "read_file", "edit_file"],
    warnings: [],
    // Its own file tools report changes; a file a command writes shows only in the diff.
    fileChanges: ["created notes/hello.txt", "modified README.md"],
  },
  codex: {
    tools: ["exec_command"],
    steps: () => codexSteps(),
    calls: Array(4).fill("command_execution"),
    // Codex 0.169 has bundled metadata for gpt-5.5 and later, not for gpt-5: it warns and goes on.
    warnings: ["Model metadata for `gpt-5` not found"],
  },
};

describe("real agent CLIs against fakes of the real providers", () => {
  it.each(cases)(
    "$title: writes, runs, edits and reports, every token metered as the provider reported it",
    async ({ agent, model, provider, startFake, expected }) => {
      let ws = "";
      const plan = SESSIONS[agent];
      // The steps name absolute paths in the workspace, known once the bench is up.
      const play = session(() => plan.steps(ws), plan.tools);
      bench = await startProviderBench({ ...provider, startFake: () => startFake(play.script) });
      ws = await makeWorkspace(bench);

      const run = await runDriver(bench, driverFor(agent, bench), {
        workspacePath: ws,
        prompt: "Add notes, run the command, greet from a real provider.",
        model,
      });

      expect(run.result).toMatchObject({ reason: "completed", summary: SUMMARY });
      expect(run.closed).toEqual({ refusal: undefined, failure: undefined });
      await expectDiff(ws);
      expectEvents(run, plan.calls, plan.warnings, plan.fileChanges);
      // Every step was played once, in order, with the session's tools offered.
      expect(play.main).toHaveLength(plan.steps(ws).length);
      const metered = await expectMetered(bench, run, expected, model);
      expect(metered.requests).toBe(play.main.length + play.side.length);
    },
    120_000,
  );

  it("ends a Claude Code run with the provider's own 401 when the gateway holds a wrong key", async () => {
    let scripted = 0;
    bench = await startProviderBench({
      kind: "anthropic",
      gatewayKey: "sk-wrong-key-000000000000",
      startFake: () =>
        startFakeAnthropic({
          apiKey: PROVIDER_KEY,
          script: () => {
            scripted++;
            return { text: "never sent" };
          },
        }),
    });
    const ws = await makeWorkspace(bench);
    // The driver caps Claude Code's own retries (it retries a 401 with backoff for minutes otherwise).
    const driver = claudeCodeDriver({
      homesDir: path.join(bench.scratch, "homes"),
      env: bench.env,
      wallTimeMs: 120_000,
    });
    const run = await runDriver(bench, driver, {
      workspacePath: ws,
      prompt: "Do something.",
      model: "claude-sonnet-4-5",
    });

    expect(run.result.reason).toBe("error");
    expect(run.result.summary).toBe("Claude Code failed: Invalid API key · Fix external API key");
    expect(ofKind(run.events, "error").at(-1)?.message).toBe(run.result.summary);
    expect(run.closed).toEqual({
      refusal: undefined,
      failure: {
        status: 401,
        from: "provider",
        blocking: true,
        // The provider's own words, not Claude Code's paraphrase of them.
        message: "401: invalid x-api-key",
      },
    });
    expect(workspaceStatus(ws)).toEqual([]);

    // The fake refused before any script ran; the gateway sent the key it holds, in x-api-key.
    expect(scripted).toBe(0);
    expect(bench.fake.reported).toEqual({ inputTokens: 0, outputTokens: 0, requests: 0 });
    const models = bench.fake.requests.filter((r) => r.path === "/v1/messages");
    // Its first try and the one retry the driver allows.
    expect(models).toHaveLength(2);
    for (const request of models) {
      expect(request.headers["x-api-key"]).toBe("sk-wrong-key-000000000000");
      expect(request.headers.authorization).toBeUndefined();
    }
    // Every refused request is in the ledger, unmetered, with the provider's status.
    const metered = await metering(bench, run.runId);
    expect(metered.requests).toBe(models.length);
    expect(metered.rows.every((r) => r.status === 401 && r.input_tokens === 0)).toBe(true);
    expect(metered.rows[0]?.error).toContain("invalid x-api-key");
    expect(bench.trap.attempts).toEqual([]);
  }, 120_000);
});
