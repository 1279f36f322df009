export { Line, type LineParts, type LineSettings } from "./line.ts";
export type { LineProgress, ProgressListener } from "./progress.ts";
