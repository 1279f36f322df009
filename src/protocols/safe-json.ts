/** JSON.parse for text from the network: undefined instead of an exception. */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
