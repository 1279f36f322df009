export { canTranslate, createTranslation } from "./translation.ts";
export type {
  ProtocolName,
  TranslateOptions,
  Translation,
  TranslationStream,
} from "./types.ts";
export { DEFAULT_ANTHROPIC_MAX_TOKENS } from "./upstream-anthropic-request.ts";
