import { describe, expect, it } from "vitest";
import {
  encodeSSE,
  parseResponsesRequest,
  parseSSE,
  responsesEvents,
  responsesResponse,
  responsesToChat,
} from "../../src/protocols/index.ts";
import { expectInvalidRequest } from "../support/protocols.ts";

function expectInvalid(body: unknown, param: string, fragment: string): void {
  expectInvalidRequest(parseResponsesRequest, body, param, fragment);
}

const codexLike = {
  model: "gpt-sim",
  instructions: "You are Codex.",
  store: false,
  include: ["reasoning.encrypted_content"],
  input: [
    { type: "message", role: "developer", content: [{ type: "input_text", text: "sandbox: on" }] },
    { role: "user", content: "list the files" },
    { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "xyz" },
    { type: "message", role: "assistant", content: [{ type: "output_text", text: "Listing." }] },
    { type: "function_call", call_id: "call_1", name: "exec_command", arguments: '{"cmd":"ls"}' },
    { type: "function_call", call_id: "call_2", name: "exec_command", arguments: '{"cmd":"pwd"}' },
    { type: "function_call_output", call_id: "call_1", output: "a.ts" },
    { type: "function_call_output", call_id: "call_2", output: "/work" },
    { type: "reasoning", id: "rs_2", summary: [] },
    { type: "function_call", call_id: "call_3", name: "exec_command", arguments: "{}" },
    {
      type: "function_call_output",
      call_id: "call_3",
      output: [{ type: "input_text", text: "ok" }],
    },
  ],
  tools: [
    { type: "function", name: "exec_command", parameters: { type: "object" }, strict: false },
    { type: "web_search" },
  ],
  tool_choice: "auto",
  stream: true,
  max_output_tokens: 500,
};

describe("parseResponsesRequest and responsesToChat", () => {
  it("turns Codex-style items into one assistant message per model reply", () => {
    const chat = responsesToChat(parseResponsesRequest(codexLike));
    expect(chat.messages.map((m) => m.role)).toEqual([
      "system",
      "developer",
      "user",
      "assistant",
      "tool",
      "tool",
      "assistant",
      "tool",
    ]);
    const first = chat.messages[3];
    expect(first?.role === "assistant" && first.content).toBe("Listing.");
    expect(first?.role === "assistant" && first.tool_calls?.map((c) => c.id)).toEqual([
      "call_1",
      "call_2",
    ]);
    expect(chat.messages[7]).toEqual({ role: "tool", tool_call_id: "call_3", content: "ok" });
    expect(chat.tools?.map((t) => t.function.name)).toEqual(["exec_command"]);
    expect(chat.max_completion_tokens).toBe(500);
    expect(chat.stream).toBe(true);
  });

  it("takes a plain string input", () => {
    const chat = responsesToChat(parseResponsesRequest({ model: "m", input: "hello" }));
    expect(chat.messages).toEqual([{ role: "user", content: "hello" }]);
    expect(chat.stream).toBe(false);
  });

  it("names the missing or wrong field", () => {
    expectInvalid({ input: "x" }, "model", "required");
    expectInvalid({ model: "m", input: 5 }, "input", "string");
    expectInvalid(
      { model: "m", input: [{ type: "function_call", name: "x", arguments: "{}" }] },
      "input[0].call_id",
      "required",
    );
    expectInvalid({ model: "m", input: [{ content: "hi" }] }, "input[0].role", "user");
    expectInvalid(
      { model: "m", input: [{ role: "user", content: [{ type: "input_text" }] }] },
      "input[0].content[0].text",
      "text",
    );
    expectInvalid(
      { model: "m", input: "x", tools: [{ type: "function" }] },
      "tools[0].name",
      "name",
    );
    expectInvalid({ model: "m", input: "x", max_output_tokens: -1 }, "max_output_tokens", ">0");
  });
});

const reply = {
  id: "resp_abc",
  model: "gpt-sim",
  createdAt: 1700000000,
  content: "Running the tests.",
  toolCalls: [{ id: "call_7", name: "exec_command", arguments: '{"cmd":"npm test"}' }],
  usage: { prompt_tokens: 30, completion_tokens: 9, total_tokens: 39 },
};

describe("Responses replies", () => {
  it("builds a completed response with a message and a function call", () => {
    const body = responsesResponse(reply);
    expect(body).toMatchObject({
      id: "resp_abc",
      object: "response",
      status: "completed",
      model: "gpt-sim",
      usage: {
        input_tokens: 30,
        output_tokens: 9,
        total_tokens: 39,
        input_tokens_details: { cached_tokens: 0 },
      },
    });
    expect(body.output).toEqual([
      {
        id: "msg_abc",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [
          { type: "output_text", text: "Running the tests.", annotations: [], logprobs: [] },
        ],
      },
      {
        id: "fc_abc_0",
        type: "function_call",
        status: "completed",
        call_id: "call_7",
        name: "exec_command",
        arguments: '{"cmd":"npm test"}',
      },
    ]);
  });

  it("marks a reply cut at max_output_tokens as incomplete", () => {
    const body = responsesResponse({ ...reply, toolCalls: [], finishReason: "length" });
    expect(body.status).toBe("incomplete");
    expect(body.incomplete_details).toEqual({ reason: "max_output_tokens" });
  });

  it("streams numbered, named events whose deltas rebuild the reply", () => {
    const events = responsesEvents(reply);
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.every((e) => e.event === e.data.type)).toBe(true);
    const names = events.map((e) => e.event);
    expect(names.slice(0, 3)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
    ]);
    expect(names.at(-1)).toBe("response.completed");
    expect(names.filter((n) => n === "response.output_item.done")).toHaveLength(2);
    const wire = parseSSE(events.map((e) => encodeSSE(e.data, e.event)).join(""));
    const payloads = wire.map((e) => JSON.parse(e.data));
    const text = payloads
      .filter((p) => p.type === "response.output_text.delta")
      .map((p) => p.delta)
      .join("");
    const args = payloads
      .filter((p) => p.type === "response.function_call_arguments.delta")
      .map((p) => p.delta)
      .join("");
    expect(text).toBe(reply.content);
    expect(args).toBe('{"cmd":"npm test"}');
    const completed = payloads.at(-1);
    expect(completed.response.usage.output_tokens).toBe(9);
    expect(completed.response.output).toEqual(responsesResponse(reply).output);
  });
});
