import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  loadScenario,
  parseScenario,
  type RunningSimulator,
  ScenarioError,
  scenarioFromValue,
  scenarioPolicy,
  startSimulator,
} from "../../src/sim/index.ts";

const fixture = join(import.meta.dirname, "fixtures", "fix-greeting.yaml");

let sim: RunningSimulator | undefined;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nightshift-scenario-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const tools: Anthropic.Tool[] = [
  { name: "Read", input_schema: { type: "object", properties: { file_path: { type: "string" } } } },
  { name: "Bash", input_schema: { type: "object", properties: { command: { type: "string" } } } },
];

function toolResult(message: Anthropic.Message, content: string): Anthropic.MessageParam {
  const use = message.content.find((b) => b.type === "tool_use");
  return {
    role: "user",
    content: [{ type: "tool_result", tool_use_id: use?.id ?? "", content }],
  };
}

describe("scenario files", () => {
  it("plays a YAML scenario to a Claude-style client, retrying past its scripted 429", async () => {
    const scenario = await loadScenario(fixture);
    expect(scenario.name).toBe("fix-greeting");
    expect(scenario.steps).toHaveLength(3);
    sim = await startSimulator({ policy: scenarioPolicy(scenario) });
    const client = new Anthropic({ apiKey: "k", baseURL: sim.rootUrl, maxRetries: 2 });
    const base = { model: "claude-sim", max_tokens: 1000, tools };
    const messages: Anthropic.MessageParam[] = [
      { role: "user", content: "Fix the greeting please" },
    ];
    const first = await client.messages.stream({ ...base, messages }).finalMessage();
    expect(first.content[1]).toMatchObject({ name: "Read", input: { file_path: "src/greet.ts" } });
    messages.push({ role: "assistant", content: first.content });
    messages.push(toolResult(first, "export function greet() { return 'hi' }"));
    const second = await client.messages.create({ ...base, messages });
    expect(second.content[0]).toMatchObject({ name: "Bash", input: { command: "npm test" } });
    messages.push({ role: "assistant", content: second.content }, toolResult(second, "1 pass"));
    const third = await client.messages.create({ ...base, messages });
    expect(third.content).toEqual([{ type: "text", text: "Fixed the greeting; the tests pass." }]);
    expect(sim.stats.faults.rate_limit).toBe(1);
    expect(sim.stats.requests).toBe(3);
  });

  it("answers a request that misses the step's expectation with a 400 naming step, expected and seen", async () => {
    sim = await startSimulator({ policy: scenarioPolicy(await loadScenario(fixture)) });
    const client = new Anthropic({ apiKey: "k", baseURL: sim.rootUrl, maxRetries: 0 });
    const error = await client.messages
      .create({
        model: "claude-other",
        max_tokens: 10,
        messages: [{ role: "user", content: "Write a poem" }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    const body = (error as InstanceType<typeof Anthropic.BadRequestError>).error as {
      error: { type: string; message: string };
    };
    expect(body.error.type).toBe("invalid_request_error");
    const message = body.error.message;
    expect(message).toContain('scenario "fix-greeting" step 1 of 3 ("read the file")');
    expect(message).toContain('expected model "claude-sim", saw "claude-other"');
    expect(message).toContain(
      'expected the last user message to contain "Fix the greeting", saw "Write a poem"',
    );
    expect(message).toContain("expected tools Read, Bash to be offered, saw []");
  });

  it("says so when the conversation runs past the script", async () => {
    const scenario = scenarioFromValue([{ reply: "only step" }], "short");
    sim = await startSimulator({ policy: scenarioPolicy(scenario) });
    const error = await new OpenAI({
      apiKey: "k",
      baseURL: sim.url,
      maxRetries: 0,
    }).chat.completions
      .create({
        model: "m",
        messages: [
          { role: "user", content: "a" },
          { role: "assistant", content: "only step" },
          { role: "user", content: "b" },
        ],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as Error).message).toContain(
      'scenario "short" has 1 steps, but the conversation is at turn 2',
    );
  });

  it("serves a fault-only step to every request that reaches it", async () => {
    const scenario = parseScenario('[{"fault": "stall"}, {"fault": 503}]', "inline.json");
    expect(scenario.steps.map((s) => s.fault?.kind)).toEqual(["stall", "server_error"]);
    sim = await startSimulator({ policy: scenarioPolicy(scenario) });
    const client = new OpenAI({ apiKey: "k", baseURL: sim.url, maxRetries: 0 });
    const conversation: OpenAI.ChatCompletionMessageParam[] = [
      { role: "user", content: "a" },
      { role: "assistant", content: "x" },
      { role: "user", content: "b" },
    ];
    for (let i = 0; i < 2; i++) {
      const error = await client.chat.completions
        .create({ model: "m", messages: conversation })
        .catch((e: unknown) => e);
      expect((error as { status?: number }).status).toBe(503);
    }
  });
});

describe("bad scenario files", () => {
  async function loadError(name: string, text: string): Promise<ScenarioError> {
    const path = join(dir, name);
    await writeFile(path, text);
    const error = await loadScenario(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScenarioError);
    expect((error as ScenarioError).code).toBe("invalid_scenario");
    expect((error as Error).message).toContain(path);
    return error as ScenarioError;
  }

  it("names the step and the field", async () => {
    const noReply = await loadError("a.yaml", "steps:\n  - reply: hi\n  - expect: { model: m }\n");
    expect(noReply.message).toContain("step 2 (steps[1]): a step needs a reply or a fault");
    const typo = await loadError("b.yaml", "- reply: hi\n  expect: { last_user_contain: x }\n");
    expect(typo.message).toContain("step 1 (steps[0].expect)");
    expect(typo.message).toContain("last_user_contain");
    const noName = await loadError(
      "c.yaml",
      "- reply:\n    tool_calls:\n      - arguments: { path: x }\n",
    );
    expect(noName.message).toContain("step 1 (steps[0].reply.tool_calls[0].name)");
    const badFault = await loadError("d.json", '{"steps": [{"reply": "x"}, {"fault": 404}]}');
    expect(badFault.message).toContain("step 2 (steps[1].fault)");
    expect(badFault.message).toContain("429");
    const badKind = await loadError("e.yaml", "- fault: explode\n");
    expect(badKind.message).toContain("steps[0].fault.kind");
    const emptyReply = await loadError("f.yaml", "- reply: {}\n");
    expect(emptyReply.message).toContain("a reply needs content or tool_calls");
  });

  it("refuses files that are not YAML, not a scenario, or missing", async () => {
    expect((await loadError("g.yaml", "steps: [unclosed\n")).message).toContain("not valid YAML");
    expect((await loadError("h.yaml", "just text\n")).message).toContain("a list of steps");
    expect((await loadError("i.yaml", "steps: []\n")).message).toContain("steps");
    const missing = await loadScenario(join(dir, "nope.yaml")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ScenarioError);
    expect((missing as Error).message).toContain("cannot read scenario file");
  });
});
