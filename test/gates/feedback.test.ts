import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createTestGate, feedbackFrom, type GateOutcome } from "../../src/gates/index.ts";

function outcome(output: string, extra: Partial<GateOutcome> = {}): GateOutcome {
  return {
    gate: "test",
    passed: false,
    exitCode: 1,
    output,
    durationMs: 1234,
    timedOut: false,
    ...extra,
  };
}

describe("feedbackFrom", () => {
  it("names the gate and exit code and keeps short output whole", () => {
    const text = feedbackFrom(
      outcome("\u001b[31mFAIL\u001b[0m sum.test.js\n  expected 3 to be 4\n"),
    );
    expect(text).toContain('Gate "test" failed with exit code 1');
    expect(text).toContain("FAIL sum.test.js\n  expected 3 to be 4");
    expect(text).not.toContain("\u001b[");
  });

  it("picks the failing assertion out of long output and keeps the summary, within maxChars", () => {
    const noise = Array.from({ length: 3000 }, (_, i) => `ok ${i} - passes quietly`);
    noise.splice(
      1200,
      0,
      "not ok 1201 - adds numbers",
      "  AssertionError: expected 3 to equal 4",
      "    at sum.test.js:12:5",
    );
    const output = [...noise, "# tests 3001", "# fail 1"].join("\n");
    const text = feedbackFrom(outcome(output), 2000);
    expect(text.length).toBeLessThanOrEqual(2000);
    expect(text).toContain(
      "not ok 1201 - adds numbers\n  AssertionError: expected 3 to equal 4\n    at sum.test.js:12:5",
    );
    expect(text).toContain("# tests 3001\n# fail 1");
    expect(text).toContain("[...]");
    expect(text).not.toContain("ok 500 - passes quietly");
  });

  it("says when a gate timed out, and when it printed nothing", () => {
    const text = feedbackFrom(outcome("", { timedOut: true, exitCode: null, durationMs: 600_000 }));
    expect(text).toContain("timed out after 600.0s");
    expect(text).toContain("printed nothing");
    expect(feedbackFrom({ ...outcome("x"), passed: true, exitCode: 0 })).toBe(
      'Gate "test" passed.',
    );
  });

  it("turns a real failing test run into feedback with the assertion line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nightshift-feedback-"));
    try {
      writeFileSync(
        join(dir, "sum.test.mjs"),
        [
          'import { test } from "node:test";',
          'import assert from "node:assert/strict";',
          'test("adds", () => { assert.equal(1 + 2, 4, "sum of 1 and 2"); });',
        ].join("\n"),
      );
      const result = await createTestGate({ command: "node --test --test-reporter=tap" }).run({
        workspacePath: dir,
        commit: "x",
      });
      expect(result.passed).toBe(false);
      const text = feedbackFrom(result, 1500);
      expect(text.length).toBeLessThanOrEqual(1500);
      expect(text).toContain("not ok 1 - adds");
      expect(text).toContain("sum of 1 and 2");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
