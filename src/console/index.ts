export { checkBind, isLoopback } from "./auth.ts";
export { type BudgetLimits, charts } from "./charts.ts";
export { apiMarkdown, openApiDocument, ROUTES } from "./openapi.ts";
export { type ConsoleOptions, consoleApp, type RunningConsole, startConsole } from "./server.ts";
export { lineView } from "./views.ts";
