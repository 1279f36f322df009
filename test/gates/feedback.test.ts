import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

  it("picks the failing check out of long TAP output, without the passing ones, within maxChars", () => {
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
    expect(text).toContain("1 of 3001 checks failed");
    expect(text).toContain('### Failing check 1 of 1: "adds numbers"');
    expect(text).toContain(
      "assertion:\n  AssertionError: expected 3 to equal 4\n  at sum.test.js:12:5",
    );
    expect(text).not.toContain("passes quietly");
  });

  it("keeps failure lines and the summary of output that is not a test report, without passing lines", () => {
    const noise = Array.from({ length: 3000 }, (_, i) => `\u2713 step ${i} fine`);
    noise.splice(1200, 0, "src/sum.ts(12,5): error TS2322: Type 'string' is not assignable");
    const output = [...noise, "Found 1 error."].join("\n");
    const text = feedbackFrom(outcome(output, { gate: "typecheck" }), 1500);
    expect(text.length).toBeLessThanOrEqual(1500);
    expect(text).toContain('Gate "typecheck" failed with exit code 1');
    expect(text).toContain("error TS2322");
    expect(text).toContain("Found 1 error.");
    expect(text).not.toContain("fine");
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
      expect(text).toContain('Failing check 1 of 1: "adds"');
      expect(text).toContain("sum of 1 and 2");
      expect(text).toContain("expected: 4\nobserved: 3");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a suite of 50 tests with one failure: the failing test, its assertion and the hunk of the change it points at, and no passing test, in under 1,500 characters", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nightshift-feedback-"));
    try {
      mkdirSync(join(dir, "src"));
      mkdirSync(join(dir, "test"));
      const lib = [
        "export function add(a, b) {",
        "  return a + b;",
        "}",
        "",
        "export function mean(values) {",
        "  return values.reduce((s, v) => s + v, 0) / (values.length + 1);",
        "}",
        "",
      ].join("\n");
      writeFileSync(join(dir, "src", "stats.mjs"), lib);
      const tests = [
        'import { test } from "node:test";',
        'import assert from "node:assert/strict";',
        'import { add, mean } from "../src/stats.mjs";',
        ...Array.from(
          { length: 49 },
          (_, i) => `test("add handles case ${i}", () => assert.equal(add(${i}, 1), ${i + 1}));`,
        ),
        'test("mean of 2 and 4 is 3", () => assert.equal(mean([2, 4]), 3, "mean([2, 4])"));',
      ];
      writeFileSync(join(dir, "test", "stats.test.mjs"), tests.join("\n"));
      const result = await createTestGate({
        command: "node --test --test-reporter=tap test/",
      }).run({ workspacePath: dir, commit: "x" });
      expect(result.passed).toBe(false);
      expect(result.output.length).toBeGreaterThan(5000);
      const diff = [
        "diff --git a/src/stats.mjs b/src/stats.mjs",
        "--- a/src/stats.mjs",
        "+++ b/src/stats.mjs",
        "@@ -1,3 +1,3 @@",
        " export function add(a, b) {",
        "-  return a - b;",
        "+  return a + b;",
        " }",
        "@@ -5,3 +5,3 @@",
        " export function mean(values) {",
        "-  return values.reduce((s, v) => s + v, 0) / values.length;",
        "+  return values.reduce((s, v) => s + v, 0) / (values.length + 1);",
        " }",
        "diff --git a/test/stats.test.mjs b/test/stats.test.mjs",
        "--- a/test/stats.test.mjs",
        "+++ b/test/stats.test.mjs",
        "@@ -1,1 +1,2 @@",
        ' import { test } from "node:test";',
        '+import assert from "node:assert/strict";',
      ].join("\n");
      const text = feedbackFrom(result, { maxChars: 4000, diff, root: dir });
      expect(text.length).toBeLessThan(1500);
      expect(text).toContain('Gate "test" failed with exit code 1.');
      expect(text).toContain("1 of 50 checks failed");
      expect(text).toContain('### Failing check 1 of 1: "mean of 2 and 4 is 3"');
      expect(text).toContain("where: test/stats.test.mjs:53");
      expect(text).toContain("expected: 3\nobserved: 2");
      expect(text).toContain("mean([2, 4])");
      // The hunk that broke mean() comes first.
      expect(text).toMatch(/### Your change, where the failure points\n@@ src\/stats.mjs:5 @@/);
      expect(text).toContain("+  return values.reduce((s, v) => s + v, 0) / (values.length + 1);");
      // No passing test, no path outside the workspace.
      expect(text).not.toMatch(/add handles case|^ok \d+/m);
      expect(text).not.toContain(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
