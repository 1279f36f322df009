export {
  type BudgetLimits,
  type BudgetRefusal,
  type BudgetScope,
  Budgets,
  isRefusal,
  type Reservation,
  type Spend,
} from "./budgets.ts";
export { type ModelFailure, providerMessage } from "./failures.ts";
export { Gateway, type GatewayOptions, type RunModelAccess } from "./gateway.ts";
export { type Grant, type RunGrant, ScopedKeys } from "./keys.ts";
export { Meter, type MeterOptions } from "./meter.ts";
export {
  bundledPrices,
  loadPrices,
  type ModelPrice,
  PriceTable,
  parsePriceTable,
  priceOf,
} from "./prices.ts";
export {
  type ConfiguredProvider,
  isRouteRefusal,
  modelRouter,
  protocolRouter,
  type Route,
  type RouteDecision,
  type Router,
  type Upstream,
  upstreamHeaders,
  upstreamURL,
} from "./routing.ts";
export { type TranscriptEntry, Transcripts } from "./transcripts.ts";
export {
  defaultRetryPolicy,
  forward,
  type RetryPolicy,
  readText,
  UpstreamError,
} from "./upstream.ts";
