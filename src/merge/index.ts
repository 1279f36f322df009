export { type LandingHooks, type LandingResult, SerialMergeQueue } from "./serial-queue.ts";
