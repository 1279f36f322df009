// A fake of the Gemini API (generativelanguage.googleapis.com, v1beta), written from the public wire format.
import {
  type Exchange,
  estimateUsage,
  FakeCore,
  type FakeFailure,
  type FakeProvider,
  type FakeScript,
  type FakeTurn,
  header,
  isFailure,
  isRecord,
  makeId,
  sendJson,
  serve,
  textPieces,
  type Usage,
} from "./fake-providers-common.ts";

const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "NOT_IMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

const JSON_TYPE = "application/json; charset=UTF-8";

const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const REQUEST_FIELDS = new Set([
  "model",
  "contents",
  "tools",
  "toolConfig",
  "safetySettings",
  "systemInstruction",
  "generationConfig",
  "cachedContent",
  "labels",
]);
const GENERATION_CONFIG_FIELDS = new Set([
  "stopSequences",
  "responseMimeType",
  "responseSchema",
  "responseJsonSchema",
  "responseModalities",
  "candidateCount",
  "maxOutputTokens",
  "temperature",
  "topP",
  "topK",
  "seed",
  "presencePenalty",
  "frequencyPenalty",
  "responseLogprobs",
  "logprobs",
  "enableEnhancedCivicAnswers",
  "speechConfig",
  "thinkingConfig",
  "imageConfig",
  "mediaResolution",
]);
const CONTENT_FIELDS = new Set(["role", "parts"]);
const PART_DATA = [
  "text",
  "inlineData",
  "functionCall",
  "functionResponse",
  "fileData",
  "executableCode",
  "codeExecutionResult",
];
const PART_FIELDS = new Set([
  ...PART_DATA,
  "thought",
  "thoughtSignature",
  "videoMetadata",
  "partMetadata",
]);
const TOOL_FIELDS = new Set([
  "functionDeclarations",
  "googleSearchRetrieval",
  "codeExecution",
  "googleSearch",
  "computerUse",
  "urlContext",
  "fileSearch",
  "googleMaps",
]);
const DECLARATION_FIELDS = new Set([
  "name",
  "description",
  "behavior",
  "parameters",
  "parametersJsonSchema",
  "response",
  "responseJsonSchema",
]);
/** The OpenAPI subset the `Schema` message knows; anything else is an unknown proto field. */
const SCHEMA_FIELDS = new Set([
  "type",
  "format",
  "title",
  "description",
  "nullable",
  "enum",
  "maxItems",
  "minItems",
  "properties",
  "required",
  "minProperties",
  "maxProperties",
  "minLength",
  "maxLength",
  "pattern",
  "example",
  "anyOf",
  "propertyOrdering",
  "default",
  "items",
  "minimum",
  "maximum",
]);

class InvalidArgument extends Error {}

/** Collects the "Unknown name" complaints the real proto JSON parser makes, all at once. */
class UnknownFields {
  readonly problems: string[] = [];
  check(value: unknown, allowed: Set<string>, at: string): void {
    if (!isRecord(value)) return;
    for (const key of Object.keys(value))
      if (!allowed.has(camel(key)))
        this.problems.push(
          `Invalid JSON payload received. Unknown name "${key}"${at ? ` at '${at}'` : ""}: Cannot find field.`,
        );
  }
  schema(value: unknown, at: string): void {
    if (!isRecord(value)) return;
    this.check(value, SCHEMA_FIELDS, at);
    if (Array.isArray(value.type))
      this.problems.push(
        `Invalid JSON payload received. Unknown name "type" at '${at}': Proto field is not repeating, cannot start list.`,
      );
    if (isRecord(value.properties))
      Object.values(value.properties).forEach((p, i) => {
        this.schema(p, `${at}.properties[${i}].value`);
      });
    if (value.items !== undefined) this.schema(value.items, `${at}.items`);
    const anyOf = value.anyOf ?? value.any_of;
    if (Array.isArray(anyOf))
      anyOf.forEach((s, i) => {
        this.schema(s, `${at}.any_of[${i}]`);
      });
  }
}

function field(record: Record<string, unknown>, name: string): unknown {
  return record[name] ?? record[snake(name)];
}

function validateContents(contents: unknown, where: string): void {
  if (contents === undefined || (Array.isArray(contents) && contents.length === 0))
    throw new InvalidArgument(`* ${where}.contents: contents is not specified\n`);
  if (!Array.isArray(contents))
    throw new InvalidArgument(
      `Invalid JSON payload received. Unknown name "contents": Proto field is not repeating, cannot start list.`,
    );
  const problems = new UnknownFields();
  contents.forEach((content, i) => {
    problems.check(content, CONTENT_FIELDS, `contents[${i}]`);
    if (isRecord(content) && Array.isArray(content.parts))
      content.parts.forEach((part, j) => {
        problems.check(part, PART_FIELDS, `contents[${i}].parts[${j}]`);
      });
  });
  if (problems.problems.length > 0) throw new InvalidArgument(problems.problems.join("\n"));
  const calls = (c: unknown): string[] =>
    isRecord(c) && Array.isArray(c.parts)
      ? c.parts
          .map((p) => (isRecord(p) ? field(p, "functionCall") : undefined))
          .filter(isRecord)
          .map((f) => String(f.name))
      : [];
  const responses = (c: unknown): string[] =>
    isRecord(c) && Array.isArray(c.parts)
      ? c.parts
          .map((p) => (isRecord(p) ? field(p, "functionResponse") : undefined))
          .filter(isRecord)
          .map((f) => String(f.name))
      : [];
  contents.forEach((content, i) => {
    if (!isRecord(content))
      throw new InvalidArgument(`* ${where}.contents[${i}]: must be an object\n`);
    if (content.role !== undefined && content.role !== "user" && content.role !== "model")
      throw new InvalidArgument("Please use a valid role: user, model.");
    if (!Array.isArray(content.parts) || content.parts.length === 0)
      throw new InvalidArgument(
        `* ${where}.contents[${i}].parts: contents.parts must not be empty.\n`,
      );
    content.parts.forEach((part, j) => {
      if (!isRecord(part) || !PART_DATA.some((k) => field(part, k) !== undefined))
        throw new InvalidArgument(
          `* ${where}.contents[${i}].parts[${j}].data: required oneof field 'data' must have one initialized field\n`,
        );
    });
    const answered = responses(content);
    if (answered.length > 0) {
      const previous = contents[i - 1];
      const asked = calls(previous);
      if (asked.length === 0 || (isRecord(previous) && previous.role !== "model"))
        throw new InvalidArgument(
          "Please ensure that function response turn comes immediately after a function call turn.",
        );
      if (asked.length !== answered.length)
        throw new InvalidArgument(
          "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.",
        );
      const unmatched = answered.filter((name) => !asked.includes(name));
      if (unmatched.length > 0)
        throw new InvalidArgument(
          `Please ensure that function response names match the function call names of the function call turn: ${unmatched.join(", ")}.`,
        );
    }
    if (calls(content).length > 0) {
      const previous = contents[i - 1];
      const afterUser = isRecord(previous) && previous.role !== "model";
      if (!afterUser)
        throw new InvalidArgument(
          "Please ensure that function call turn comes immediately after a user turn or after a function response turn.",
        );
    }
  });
}

function validateGenerate(body: unknown, where = "GenerateContentRequest"): void {
  if (!isRecord(body))
    throw new InvalidArgument("Invalid JSON payload received. Expected an object.");
  const problems = new UnknownFields();
  problems.check(body, REQUEST_FIELDS, "");
  problems.check(field(body, "generationConfig"), GENERATION_CONFIG_FIELDS, "generation_config");
  const tools = body.tools;
  if (Array.isArray(tools))
    tools.forEach((tool, t) => {
      problems.check(tool, TOOL_FIELDS, `tools[${t}]`);
      const declarations = isRecord(tool) ? field(tool, "functionDeclarations") : undefined;
      if (!Array.isArray(declarations)) return;
      declarations.forEach((d, i) => {
        const at = `tools[${t}].function_declarations[${i}]`;
        problems.check(d, DECLARATION_FIELDS, at);
        if (!isRecord(d)) return;
        problems.schema(d.parameters, `${at}.parameters`);
        problems.schema(d.response, `${at}.response`);
      });
    });
  if (problems.problems.length > 0) throw new InvalidArgument(problems.problems.join("\n"));
  validateContents(body.contents, where);
  if (Array.isArray(tools))
    tools.forEach((tool, t) => {
      const declarations = isRecord(tool) ? field(tool, "functionDeclarations") : undefined;
      if (!Array.isArray(declarations)) return;
      declarations.forEach((d, i) => {
        const name = isRecord(d) ? d.name : undefined;
        if (typeof name !== "string" || name.length === 0)
          throw new InvalidArgument(
            `* ${where}.tools[${t}].function_declarations[${i}].name: Name cannot be empty.\n`,
          );
        if (!/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/.test(name))
          throw new InvalidArgument(
            `* ${where}.tools[${t}].function_declarations[${i}].name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.\n`,
          );
      });
    });
}

export async function startFakeGemini(o: {
  apiKey: string;
  script: FakeScript;
}): Promise<FakeProvider> {
  const core = new FakeCore(o.script);

  const sendError = (x: Exchange, code: number, message: string, details?: unknown[]): void => {
    const status = STATUS_NAMES[code] ?? (code >= 500 ? "INTERNAL" : "INVALID_ARGUMENT");
    sendJson(
      x.res,
      code,
      { error: { code, message, status, ...(details ? { details } : {}) } },
      {},
      JSON_TYPE,
    );
  };

  const sendFailure = (
    x: Exchange,
    failure: FakeFailure["fail"],
    model: string,
    method: string,
  ): void => {
    const { status, retryAfterSeconds } = failure;
    const defaults: Record<number, string> = {
      400: "Request contains an invalid argument.",
      401: "Request had invalid authentication credentials.",
      403: "The caller does not have permission",
      404: `models/${model} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
      429: "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
      500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
      503: "The model is overloaded. Please try again later.",
      504: "Deadline expired before operation could complete.",
    };
    const details =
      retryAfterSeconds !== undefined
        ? [
            {
              "@type": "type.googleapis.com/google.rpc.RetryInfo",
              retryDelay: `${retryAfterSeconds}s`,
            },
          ]
        : undefined;
    sendError(x, status, failure.message ?? defaults[status] ?? "Error", details);
  };

  const authorize = (x: Exchange): boolean => {
    const key = header(x.recorded, "x-goog-api-key") ?? x.query.get("key") ?? undefined;
    if (key === undefined) {
      if (header(x.recorded, "authorization") !== undefined) {
        sendError(
          x,
          401,
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        );
        return false;
      }
      sendError(
        x,
        403,
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      );
      return false;
    }
    if (key !== o.apiKey) {
      sendError(x, 400, "API key not valid. Please pass a valid API key.", [
        {
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "API_KEY_INVALID",
          domain: "googleapis.com",
          metadata: { service: "generativelanguage.googleapis.com" },
        },
      ]);
      return false;
    }
    return true;
  };

  const handle = (x: Exchange): void => {
    const match =
      /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/.exec(
        x.recorded.path,
      );
    if (!match) {
      sendError(x, 404, `Requested entity was not found.`);
      return;
    }
    const model = decodeURIComponent(match[1]!);
    const method = match[2]!;
    if (x.recorded.method !== "POST") {
      sendError(x, 405, `Method Not Allowed`);
      return;
    }
    if (!authorize(x)) return;
    if (x.parseError !== undefined) {
      sendError(x, 400, `Invalid JSON payload received. ${x.parseError}`);
      return;
    }
    const body = x.recorded.body ?? {};
    try {
      if (method === "countTokens") {
        const inner = isRecord(body)
          ? (body.generateContentRequest ?? body.generate_content_request)
          : undefined;
        if (inner !== undefined)
          validateGenerate(inner, "CountTokensRequest.generate_content_request");
        else validateContents(isRecord(body) ? body.contents : undefined, "CountTokensRequest");
      } else validateGenerate(body);
    } catch (error) {
      if (!(error instanceof InvalidArgument)) throw error;
      sendError(x, 400, error.message);
      return;
    }
    if (method === "countTokens") {
      const total = estimateUsage(body, {}).input;
      sendJson(
        x.res,
        200,
        { totalTokens: total, promptTokensDetails: [{ modality: "TEXT", tokenCount: total }] },
        {},
        JSON_TYPE,
      );
      return;
    }
    const reply = core.decide(x.recorded);
    if (isFailure(reply)) {
      sendFailure(x, reply.fail, model, method);
      return;
    }
    const usage = reply.usage ?? estimateUsage(body, reply);
    const chunks = responseChunks(reply, model, usage);
    if (method === "generateContent") {
      sendJson(x.res, 200, whole(reply, model, usage), {}, JSON_TYPE);
    } else if (x.query.get("alt") === "sse") {
      x.res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      });
      for (const chunk of chunks) x.res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
      x.res.end();
    } else {
      // Without alt=sse the stream is one JSON array, sent as it grows.
      x.res.writeHead(200, { "content-type": JSON_TYPE });
      x.res.write("[");
      chunks.forEach((chunk, i) => {
        x.res.write(`${i > 0 ? ",\r\n" : ""}${JSON.stringify(chunk)}`);
      });
      x.res.end("]");
    }
    core.report(usage);
  };

  const fullUsage = (usage: Usage) => ({
    promptTokenCount: usage.input,
    candidatesTokenCount: usage.output,
    totalTokenCount: usage.input + usage.output,
    promptTokensDetails: [{ modality: "TEXT", tokenCount: usage.input }],
  });
  const callParts = (turn: FakeTurn) =>
    (turn.toolCalls ?? []).map((call) => ({
      functionCall: { name: call.name, args: call.arguments },
    }));

  const whole = (turn: FakeTurn, model: string, usage: Usage) => {
    const parts: Record<string, unknown>[] = [];
    if (turn.text) parts.push({ text: turn.text });
    parts.push(...callParts(turn));
    if (parts.length === 0) parts.push({ text: "" });
    return {
      candidates: [{ content: { parts, role: "model" }, finishReason: "STOP", index: 0 }],
      usageMetadata: fullUsage(usage),
      modelVersion: model,
      responseId: makeId("", core.nextId(), 22),
    };
  };

  /** Text in a few chunks; function calls whole, in the last chunk, which carries finishReason and full usage. */
  const responseChunks = (turn: FakeTurn, model: string, usage: Usage) => {
    const responseId = makeId("", core.nextId(), 22);
    const texts = turn.text ? textPieces(turn.text) : [];
    const partsPerChunk: Record<string, unknown>[][] = texts.map((text) => [{ text }]);
    const calls = callParts(turn);
    if (partsPerChunk.length === 0) partsPerChunk.push(calls.length > 0 ? [] : [{ text: "" }]);
    partsPerChunk[partsPerChunk.length - 1]!.push(...calls);
    return partsPerChunk.map((parts, i) => {
      const last = i === partsPerChunk.length - 1;
      return {
        candidates: [
          {
            content: { parts, role: "model" },
            ...(last ? { finishReason: "STOP" } : {}),
            index: 0,
          },
        ],
        usageMetadata: last
          ? fullUsage(usage)
          : { promptTokenCount: usage.input, totalTokenCount: usage.input },
        modelVersion: model,
        responseId,
      };
    });
  };

  return serve(core, handle, "");
}

// ---- helpers for scripts ----

/**
 * The latest functionResponse in a generateContent body, as text: its `response.output`,
 * `response.result` or `response.content` when that is a string, else the response as JSON.
 */
export function geminiLastToolResult(body: unknown): string | undefined {
  if (!isRecord(body) || !Array.isArray(body.contents)) return undefined;
  for (let i = body.contents.length - 1; i >= 0; i--) {
    const c = body.contents[i];
    if (!isRecord(c) || !Array.isArray(c.parts)) continue;
    for (let j = c.parts.length - 1; j >= 0; j--) {
      const p = c.parts[j];
      const fr = isRecord(p) ? field(p, "functionResponse") : undefined;
      if (!isRecord(fr)) continue;
      const response = fr.response;
      if (isRecord(response))
        for (const k of ["output", "result", "content"])
          if (typeof response[k] === "string") return response[k] as string;
      return JSON.stringify(response ?? null);
    }
  }
  return undefined;
}

/** Names of the function declarations a generateContent body offers. */
export function geminiToolNames(body: unknown): string[] {
  if (!isRecord(body) || !Array.isArray(body.tools)) return [];
  return body.tools.flatMap((t) => {
    const declarations = isRecord(t) ? field(t, "functionDeclarations") : undefined;
    return Array.isArray(declarations)
      ? declarations
          .map((d) => (isRecord(d) ? d.name : undefined))
          .filter((n): n is string => typeof n === "string")
      : [];
  });
}
