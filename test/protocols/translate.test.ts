import { describe, expect, it } from "vitest";
import {
  canTranslate,
  createTranslation,
  ProtocolError,
  type ProtocolName,
} from "../../src/protocols/index.ts";

// The same conversation as each client protocol sends it: a system prompt, one tool, an earlier
// call of that tool and its result, and a new user turn. Translated, all four must give the same
// upstream body: the translation goes through one neutral form.

const schema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  properties: { path: { type: "string" } },
  required: ["path"],
  additionalProperties: false,
};
const args = '{"path":"a.ts"}';
const result = "export const a = 1;";

const clientRequests: Record<ProtocolName, { body: unknown; path: string }> = {
  "anthropic-messages": {
    path: "/v1/messages",
    body: {
      model: "claude-sonnet-4-5",
      max_tokens: 1000,
      temperature: 0.5,
      stream: true,
      system: [
        { type: "text", text: "You are a coding agent.", cache_control: { type: "ephemeral" } },
      ],
      tools: [{ name: "read_file", description: "Read a file", input_schema: schema }],
      messages: [
        { role: "user", content: "Read a.ts" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "They want a.ts.", signature: "sig" },
            { type: "text", text: "Reading it." },
            { type: "tool_use", id: "call_1", name: "read_file", input: { path: "a.ts" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_1", content: result },
            { type: "text", text: "Now fix it." },
          ],
        },
      ],
    },
  },
  "openai-chat": {
    path: "/v1/chat/completions",
    body: {
      model: "gpt-5",
      max_tokens: 1000,
      temperature: 0.5,
      stream: true,
      tools: [
        {
          type: "function",
          function: { name: "read_file", description: "Read a file", parameters: schema },
        },
      ],
      messages: [
        { role: "system", content: "You are a coding agent." },
        { role: "user", content: "Read a.ts" },
        {
          role: "assistant",
          content: "Reading it.",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "read_file", arguments: args } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: result },
        { role: "user", content: [{ type: "text", text: "Now fix it." }] },
      ],
    },
  },
  "openai-responses": {
    path: "/v1/responses",
    body: {
      model: "gpt-5-codex",
      instructions: "You are a coding agent.",
      max_output_tokens: 1000,
      temperature: 0.5,
      stream: true,
      store: false,
      tools: [
        {
          type: "function",
          name: "read_file",
          description: "Read a file",
          parameters: schema,
          strict: false,
        },
        { type: "web_search" },
      ],
      input: [
        { role: "user", content: [{ type: "input_text", text: "Read a.ts" }] },
        { type: "reasoning", summary: [], encrypted_content: "gAAAA..." },
        {
          type: "message",
          role: "assistant",
          content: [{ type: "output_text", text: "Reading it." }],
        },
        { type: "function_call", call_id: "call_1", name: "read_file", arguments: args },
        { type: "function_call_output", call_id: "call_1", output: result },
        { role: "user", content: [{ type: "input_text", text: "Now fix it." }] },
      ],
    },
  },
  gemini: {
    path: "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
    body: {
      systemInstruction: { role: "user", parts: [{ text: "You are a coding agent." }] },
      generationConfig: { maxOutputTokens: 1000, temperature: 0.5, thinkingConfig: {} },
      tools: [
        {
          functionDeclarations: [
            { name: "read_file", description: "Read a file", parametersJsonSchema: schema },
          ],
        },
      ],
      contents: [
        { role: "user", parts: [{ text: "Read a.ts" }] },
        {
          role: "model",
          parts: [
            { text: "Reading it." },
            {
              functionCall: { id: "call_1", name: "read_file", args: { path: "a.ts" } },
              thoughtSignature: "c2ln",
            },
          ],
        },
        {
          role: "user",
          parts: [
            {
              functionResponse: {
                id: "call_1",
                name: "read_file",
                response: { output: result },
              },
            },
            { text: "Now fix it." },
          ],
        },
      ],
    },
  },
};

const expectedUpstream: Record<string, { path: string; body: Record<string, unknown> }> = {
  "openai-chat": {
    path: "/v1/chat/completions",
    body: {
      model: "upstream-model",
      messages: [
        { role: "system", content: "You are a coding agent." },
        { role: "user", content: "Read a.ts" },
        {
          role: "assistant",
          content: "Reading it.",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "read_file", arguments: args } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: result },
        { role: "user", content: "Now fix it." },
      ],
      tools: [
        {
          type: "function",
          function: { name: "read_file", description: "Read a file", parameters: schema },
        },
      ],
      max_tokens: 1000,
      temperature: 0.5,
      stream: true,
      stream_options: { include_usage: true },
    },
  },
  "anthropic-messages": {
    path: "/v1/messages",
    body: {
      model: "upstream-model",
      max_tokens: 1000,
      system: "You are a coding agent.",
      messages: [
        { role: "user", content: [{ type: "text", text: "Read a.ts" }] },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Reading it." },
            { type: "tool_use", id: "call_1", name: "read_file", input: { path: "a.ts" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_1", content: result },
            { type: "text", text: "Now fix it." },
          ],
        },
      ],
      tools: [{ name: "read_file", description: "Read a file", input_schema: schema }],
      temperature: 0.5,
      stream: true,
    },
  },
  gemini: {
    path: "/v1beta/models/upstream-model:streamGenerateContent?alt=sse",
    body: {
      systemInstruction: { parts: [{ text: "You are a coding agent." }] },
      contents: [
        { role: "user", parts: [{ text: "Read a.ts" }] },
        {
          role: "model",
          parts: [
            { text: "Reading it." },
            {
              functionCall: { name: "read_file", args: { path: "a.ts" } },
              // Gemini 3 refuses history calls without a signature; this is Google's documented stand-in.
              thoughtSignature: "skip_thought_signature_validator",
            },
          ],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "read_file", response: { output: result } } },
            { text: "Now fix it." },
          ],
        },
      ],
      tools: [
        {
          functionDeclarations: [
            {
              name: "read_file",
              description: "Read a file",
              // Full JSON Schema goes in parametersJsonSchema; only the meta-schema key is dropped.
              parametersJsonSchema: {
                type: "object",
                properties: { path: { type: "string" } },
                required: ["path"],
                additionalProperties: false,
              },
            },
          ],
        },
      ],
      generationConfig: { maxOutputTokens: 1000, temperature: 0.5 },
    },
  },
};

const PAIRS: [ProtocolName, ProtocolName][] = [
  ["anthropic-messages", "openai-chat"],
  ["anthropic-messages", "gemini"],
  ["openai-chat", "anthropic-messages"],
  ["openai-chat", "gemini"],
  ["openai-responses", "openai-chat"],
  ["openai-responses", "anthropic-messages"],
  ["openai-responses", "gemini"],
  ["gemini", "openai-chat"],
  ["gemini", "anthropic-messages"],
];

function translate(client: ProtocolName, upstream: ProtocolName, body: unknown, path?: string) {
  const translation = createTranslation(client, upstream, {
    upstreamModel: "upstream-model",
    clientModel: "client-model",
  });
  return translation.request(body, path ?? clientRequests[client].path);
}

describe("canTranslate", () => {
  it("translates between different protocols, never to a Responses upstream, never to itself", () => {
    const names: ProtocolName[] = [
      "anthropic-messages",
      "openai-chat",
      "openai-responses",
      "gemini",
    ];
    const supported = names.flatMap((c) =>
      names.filter((u) => canTranslate(c, u)).map((u) => [c, u]),
    );
    expect(supported.map(String).sort()).toEqual(PAIRS.map(String).sort());
    expect(() =>
      createTranslation("openai-chat", "openai-chat", { upstreamModel: "m", clientModel: "m" }),
    ).toThrow(/cannot translate openai-chat requests for a openai-chat upstream/);
  });
});

describe("request translation: one conversation, every client, every upstream", () => {
  for (const [client, upstream] of PAIRS) {
    it(`${client} -> ${upstream}`, () => {
      const { body, path } = clientRequests[client];
      const expected = expectedUpstream[upstream];
      expect(translate(client, upstream, body, path)).toEqual({ ...expected, stream: true });
    });
  }
});

describe("request translation details", () => {
  const user = { role: "user", content: "hi" };

  it("Chat upstream: the output limit goes in the field the provider wants; no stream, no stream_options", () => {
    const translation = createTranslation("openai-responses", "openai-chat", {
      upstreamModel: "gpt-4.1",
      clientModel: "gpt-4.1",
      chatMaxTokensField: "max_completion_tokens",
    });
    const out = translation.request(
      { model: "x", input: "hi", max_output_tokens: 50, stream: false, parallel_tool_calls: false },
      "/v1/responses",
    );
    expect(out).toEqual({
      path: "/v1/chat/completions",
      stream: false,
      body: {
        model: "gpt-4.1",
        messages: [{ role: "user", content: "hi" }],
        max_completion_tokens: 50,
        stream: false,
      },
    });
  });

  it("Anthropic upstream: max_tokens defaults to 8192, developer messages join the system prompt, stop sequences and tool choice carry", () => {
    const out = translate("openai-chat", "anthropic-messages", {
      model: "x",
      messages: [
        { role: "system", content: "base" },
        { role: "developer", content: "policy" },
        user,
        { role: "system", content: "late reminder" },
      ],
      tools: [{ type: "function", function: { name: "ls" } }],
      tool_choice: "required",
      parallel_tool_calls: false,
      stop: "END",
      temperature: 1.6,
    });
    expect(out.body).toEqual({
      model: "upstream-model",
      max_tokens: 8192,
      system: "base\n\npolicy",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "hi" },
            { type: "text", text: "late reminder" },
          ],
        },
      ],
      tools: [{ name: "ls", input_schema: { type: "object", properties: {} } }],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      // Anthropic's range is 0..1.
      temperature: 1,
      stop_sequences: ["END"],
      stream: false,
    });
  });

  it("Anthropic upstream: parallel tool results become ONE user turn, results first", () => {
    const out = translate("openai-chat", "anthropic-messages", {
      model: "x",
      messages: [
        user,
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "a", type: "function", function: { name: "ls", arguments: "{}" } },
            { id: "b", type: "function", function: { name: "pwd", arguments: "not json" } },
          ],
        },
        { role: "tool", tool_call_id: "a", content: "x.ts" },
        { role: "tool", tool_call_id: "b", content: "/w" },
        { role: "user", content: "go on" },
      ],
    });
    expect(out.body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "hi" }] },
      {
        role: "assistant",
        content: [
          { type: "tool_use", id: "a", name: "ls", input: {} },
          // Arguments that are not a JSON object cannot be an Anthropic input: they become {}.
          { type: "tool_use", id: "b", name: "pwd", input: {} },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "a", content: "x.ts" },
          { type: "tool_result", tool_use_id: "b", content: "/w" },
          { type: "text", text: "go on" },
        ],
      },
    ]);
  });

  it("Anthropic client: server tools (web search) are dropped, disable_parallel_tool_use and top_p carry", () => {
    const out = translate("anthropic-messages", "openai-chat", {
      model: "claude",
      max_tokens: 10,
      messages: [user],
      tools: [
        { name: "Read", input_schema: { type: "object" } },
        { type: "web_search_20250305", name: "web_search", max_uses: 3 },
      ],
      tool_choice: { type: "auto", disable_parallel_tool_use: true },
      top_p: 0.9,
      stop_sequences: ["\n\nHuman:"],
    });
    expect(out.body).toEqual({
      model: "upstream-model",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "Read", parameters: { type: "object" } } }],
      tool_choice: "auto",
      parallel_tool_calls: false,
      max_tokens: 10,
      top_p: 0.9,
      stop: ["\n\nHuman:"],
      stream: false,
    });
  });

  it("Gemini client without call ids: calls repeated across turns get unique ids, results follow their calls", () => {
    const call = { functionCall: { name: "ls", args: {} } };
    const response = (output: string) => ({
      functionResponse: { name: "ls", response: { output } },
    });
    const out = translate(
      "gemini",
      "anthropic-messages",
      {
        contents: [
          { role: "user", parts: [{ text: "list twice" }] },
          { role: "model", parts: [call, call] },
          { role: "user", parts: [response("one"), response("two")] },
          { role: "model", parts: [call] },
          { role: "user", parts: [response("three")] },
        ],
      },
      "/v1beta/models/gemini-2.5-pro:generateContent",
    );
    const blocks = (out.body.messages as { content: Record<string, unknown>[] }[]).flatMap(
      (m) => m.content,
    );
    expect(blocks.map((b) => b.id ?? b.tool_use_id ?? b.text)).toEqual([
      "list twice",
      "ls",
      "ls_1",
      "ls",
      "ls_1",
      "ls_2",
      "ls_2",
    ]);
    expect(blocks.filter((b) => b.type === "tool_result").map((b) => b.content)).toEqual([
      "one",
      "two",
      "three",
    ]);
    expect(out).toMatchObject({ path: "/v1/messages", stream: false });
  });

  it("Gemini upstream: a non-streamed request goes to :generateContent; tool choice becomes toolConfig", () => {
    const out = translate("openai-chat", "gemini", {
      model: "x",
      messages: [user],
      tools: [{ type: "function", function: { name: "ls" } }],
      tool_choice: { type: "function", function: { name: "ls" } },
    });
    expect(out).toEqual({
      path: "/v1beta/models/upstream-model:generateContent",
      stream: false,
      body: {
        contents: [{ role: "user", parts: [{ text: "hi" }] }],
        tools: [{ functionDeclarations: [{ name: "ls" }] }],
        toolConfig: { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["ls"] } },
      },
    });
  });
});

describe("requests that cannot be translated are refused, naming the field and the fix", () => {
  function refusal(client: ProtocolName, body: unknown, path?: string): ProtocolError {
    try {
      translate(
        client,
        client === "openai-chat" ? "anthropic-messages" : "openai-chat",
        body,
        path,
      );
    } catch (error) {
      expect(error).toBeInstanceOf(ProtocolError);
      return error as ProtocolError;
    }
    throw new Error("not refused");
  }

  it("Responses previous_response_id: the translation is stateless", () => {
    const error = refusal("openai-responses", {
      model: "x",
      input: "continue",
      previous_response_id: "resp_1",
    });
    expect(error.code).toBe("invalid_request");
    expect(error.param).toBe("previous_response_id");
    expect(error.message).toMatch(/stateless.*send the whole conversation in `input`/);
  });

  it("Responses built-in tool calls and stored item references in the input", () => {
    const error = refusal("openai-responses", {
      model: "x",
      input: [
        { role: "user", content: "hi" },
        { type: "item_reference", id: "msg_1" },
      ],
    });
    expect(error.param).toBe("input[1]");
    expect(error.message).toContain("item_reference");
  });

  it("Anthropic image blocks, also inside a tool result", () => {
    const image = {
      type: "image",
      source: { type: "base64", media_type: "image/png", data: "AA" },
    };
    const direct = refusal("anthropic-messages", {
      model: "x",
      max_tokens: 5,
      messages: [{ role: "user", content: [{ type: "text", text: "look" }, image] }],
    });
    expect(direct.param).toBe("messages[0].content[1]");
    expect(direct.message).toMatch(/image block cannot be translated.*send text only/);
    const nested = refusal("anthropic-messages", {
      model: "x",
      max_tokens: 5,
      messages: [
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: [image] }] },
      ],
    });
    expect(nested.param).toBe("messages[0].content[0].content[0]");
  });

  it("Chat image parts and n > 1", () => {
    const image = refusal("openai-chat", {
      model: "x",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:," } }] }],
    });
    expect(image.param).toBe("messages[0].content[0]");
    const many = refusal("openai-chat", {
      model: "x",
      n: 2,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(many.param).toBe("n");
  });

  it("Gemini inline data", () => {
    const error = refusal(
      "gemini",
      {
        contents: [
          { role: "user", parts: [{ inlineData: { mimeType: "image/png", data: "AA" } }] },
        ],
      },
      "/v1beta/models/g:generateContent",
    );
    expect(error.param).toBe("contents[0].parts[0].inlineData");
  });

  it("malformed requests keep the protocol's own validation errors", () => {
    const error = refusal("anthropic-messages", {
      model: "x",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(error.param).toBe("max_tokens");
  });
});
