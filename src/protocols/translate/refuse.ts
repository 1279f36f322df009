import { ProtocolError } from "../errors.ts";

/** The error for a request the translation cannot carry: names the field, the reason and the fix. */
export function untranslatable(param: string, what: string, fix: string): ProtocolError {
  return new ProtocolError(
    "invalid_request",
    `${param}: ${what} cannot be translated for this model's provider (it speaks another protocol). ${fix}`,
    param,
  );
}

export const MEDIA_FIX =
  "Images, documents and audio are not carried across protocols; send text only, or use a model whose provider speaks the client's protocol natively.";
