import { z } from "zod";
import * as schema from "./schema.ts";

interface Route {
  method: "get" | "post";
  path: string;
  summary: string;
  body?: z.ZodType;
  response?: z.ZodType;
  stream?: string;
}

/** Every route of the console's API; the server's routes and this list are checked against each other by a test. */
export const ROUTES: Route[] = [
  {
    method: "get",
    path: "/api/session",
    summary: "the CSRF secret for state-changing requests, and the factory's name",
    response: z.object({ csrf: z.string(), factory: z.string() }),
  },
  {
    method: "get",
    path: "/api/line",
    summary:
      "the line at a glance: orders by station, counts, throughput, open defects, recent controls",
    response: schema.LineView,
  },
  {
    method: "get",
    path: "/api/stream",
    summary: "server-sent events: a `line` event (a LineView) now and whenever the ledger changes",
    stream: "line: LineView",
  },
  {
    method: "get",
    path: "/api/charts",
    summary: "hourly series (query: hours, 1-336, default 24)",
    response: schema.Charts,
  },
  {
    method: "get",
    path: "/api/runs/{id}",
    summary:
      "one run: events (transcript, tool calls, sandbox events), gates, model exchanges, diff, spend",
    response: schema.RunDetail,
  },
  {
    method: "get",
    path: "/api/runs/{id}/stream",
    summary: "server-sent events: a `run` event (a RunDetail) now and whenever the ledger changes",
    stream: "run: RunDetail",
  },
  { method: "get", path: "/api/openapi.json", summary: "this document" },
  {
    method: "post",
    path: "/api/line/pause",
    summary: "pause the line: no worker sharing the ledger starts a new run",
    body: schema.LineSwitchBody,
    response: schema.LineView,
  },
  {
    method: "post",
    path: "/api/line/resume",
    summary: "resume the line",
    body: schema.LineSwitchBody,
    response: schema.LineView,
  },
  {
    method: "post",
    path: "/api/orders",
    summary: "add a work order",
    body: schema.AddOrderBody,
    response: z.object({ id: z.number(), status: z.string() }),
  },
  {
    method: "post",
    path: "/api/orders/{id}/control",
    summary: "retry, requeue, cancel, approve or reject an order (the CLI's controls)",
    body: schema.OrderControlBody,
    response: z.object({ id: z.number(), status: z.string() }),
  },
  {
    method: "post",
    path: "/api/orders/{id}/amend",
    summary: "change an order's priority or token budget",
    body: schema.AmendOrderBody,
    response: z.object({
      id: z.number(),
      priority: z.number(),
      budgetTokens: z.number().nullable(),
    }),
  },
  {
    method: "post",
    path: "/api/runs/{id}/stop",
    summary: "stop a running run; its order waits for a person (approve or reject)",
    body: schema.StopRunBody,
    response: z.object({
      run: z.number(),
      runStatus: z.string(),
      order: z.number(),
      status: z.string(),
    }),
  },
  {
    method: "get",
    path: "/api/budget",
    summary:
      "the factory's spending limits: each as applied, where it is set (override or nightshift.toml), and the spend against it",
    response: schema.BudgetView,
  },
  {
    method: "post",
    path: "/api/budget/limits",
    summary:
      "set a spending limit live (the gateways apply it without a restart), or clear its override (value null)",
    body: schema.BudgetLimitBody,
    response: schema.BudgetView,
  },
  {
    method: "post",
    path: "/api/defects/{id}/close",
    summary: "close an open defect",
    body: schema.CloseDefectBody,
    response: z.object({ id: z.number(), status: z.string() }),
  },
];

const json = (type: z.ZodType) => z.toJSONSchema(type, { io: "input", unrepresentable: "any" });

/** An OpenAPI 3.1 document of the API, generated from the zod schemas the server validates with. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const params = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "integer" },
    }));
    const operations = paths[route.path] ?? {};
    paths[route.path] = operations;
    operations[route.method] = {
      summary: route.summary,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: false,
              content: { "application/json": { schema: json(route.body) } },
            },
          }
        : {}),
      responses: {
        "200": route.stream
          ? {
              description: `text/event-stream; events: ${route.stream}`,
              content: { "text/event-stream": {} },
            }
          : {
              description: "OK",
              content: {
                "application/json": { schema: route.response ? json(route.response) : {} },
              },
            },
        default: {
          description: "an error",
          content: { "application/json": { schema: json(schema.ApiError) } },
        },
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "nightshift console API", version: "1" },
    components: {
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "required when the console has an access token",
        },
        csrf: {
          type: "apiKey",
          in: "header",
          name: "x-nightshift-csrf",
          description:
            "required on POST unless the bearer token is sent; read it from GET /api/session",
        },
      },
    },
    paths,
  };
}

/** docs/console-api.md: the routes in prose, then the OpenAPI document. */
export function apiMarkdown(): string {
  const lines = [
    "# The console's HTTP API",
    "",
    "<!-- Generated from src/console/openapi.ts and src/console/schema.ts by `npm run docs:console`; test/console/api.test.ts fails when it is stale. -->",
    "",
    "The web console is a client of this API and nothing else; `nightshift watch` reads it too.",
    "Every control is recorded in the ledger's `controls` table with who used it (`console:<name>`,",
    "the name from the `x-nightshift-actor` header; the CLI records `cli:<user>`).",
    "",
    "Security: bound to loopback by default; binding elsewhere requires an access token",
    "(`NIGHTSHIFT_CONSOLE_TOKEN`), sent as `Authorization: Bearer <token>` or as the cookie a browser",
    "gets by opening `/?token=<token>` once. Every POST needs the `x-nightshift-csrf` header (from",
    "`GET /api/session`) or the bearer token, and a foreign `Origin` is refused.",
    "",
    'Errors are `{ "error": { "code", "message", "hint"? } }`: 400 `invalid_body`, 401 `unauthorized`,',
    "403 `csrf_refused` / `cross_site_refused` / `host_refused`, 404 `*_not_found`, 409 `*_refused`.",
    "",
    "| method | path | what |",
    "| --- | --- | --- |",
    ...ROUTES.map(
      (r) => `| ${r.method.toUpperCase()} | \`${r.path}\` | ${r.summary.replaceAll("|", "\\|")} |`,
    ),
    "",
    "## OpenAPI document",
    "",
    "```json",
    JSON.stringify(openApiDocument(), null, 2),
    "```",
    "",
  ];
  return lines.join("\n");
}
