import { expect } from "vitest";
import { ProtocolError } from "../../src/protocols/index.ts";

/** `parse` refuses `body` with an invalid_request error naming the offending field and the problem. */
export function expectInvalidRequest(
  parse: (body: unknown) => unknown,
  body: unknown,
  param: string,
  fragment: string,
): void {
  let caught: unknown;
  try {
    parse(body);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  const error = caught as ProtocolError;
  expect(error.code).toBe("invalid_request");
  expect(error.param).toBe(param);
  expect(error.message).toContain(param);
  expect(error.message).toContain(fragment);
}
