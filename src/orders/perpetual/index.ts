export { WorkFinder, type WorkFinderSettings } from "./finder.ts";
export { type FoundWork, findingKey, foundOrder } from "./found-work.ts";
export {
  defectsSource,
  flakyTestsSource,
  goalsSource,
  type SourceContext,
  todoSource,
} from "./sources.ts";
