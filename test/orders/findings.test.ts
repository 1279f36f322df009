import { describe, expect, it } from "vitest";
import { PerpetualSourceError, parseFindings, readCoverageReport } from "../../src/orders/index.ts";

// The output formats of lint and type-check tools not installed here (eslint, mypy, ruff, gcc),
// as those tools write them. tsc, biome and node's lcov are read from the real tools in
// perpetual-checks.test.ts.

describe("reading a check's findings", () => {
  it("reads eslint's JSON (-f json) with rule ids, auto or named", () => {
    const out = JSON.stringify([
      {
        filePath: "/repo/src/a.js",
        messages: [
          {
            ruleId: "no-console",
            severity: 2,
            message: "Unexpected console statement.",
            line: 3,
            column: 5,
          },
          {
            ruleId: null,
            severity: 2,
            message: "Parsing error: Unexpected token",
            line: 9,
            column: 1,
          },
        ],
      },
      { filePath: "/repo/src/clean.js", messages: [] },
    ]);
    const expected = [
      {
        file: "/repo/src/a.js",
        line: 3,
        column: 5,
        message: "no-console: Unexpected console statement.",
      },
      { file: "/repo/src/a.js", line: 9, column: 1, message: "Parsing error: Unexpected token" },
    ];
    expect(parseFindings(out, "eslint-json")).toEqual(expected);
    expect(parseFindings(`\n${out}\n`, "auto")).toEqual(expected);
  });

  it("reads eslint's compact, unix-style and mypy lines, skipping summaries", () => {
    const compact = [
      "/repo/src/a.js: line 3, col 5, Error - Unexpected console statement. (no-console)",
      "",
      "1 problem",
    ].join("\n");
    expect(parseFindings(compact, "eslint-compact")).toEqual([
      {
        file: "/repo/src/a.js",
        line: 3,
        column: 5,
        message: "Unexpected console statement. (no-console)",
      },
    ]);
    expect(parseFindings(compact, "auto")).toHaveLength(1);
    const generic = [
      "src/a.js:3:5: Unexpected console statement. [Error/no-console]",
      "app/models.py:12: error: Incompatible return value type  [return-value]",
      "src/m.c:7:1: warning: control reaches end of non-void function",
      "Found 3 errors in 3 files (checked 10 source files)",
    ].join("\n");
    expect(parseFindings(generic, "generic")).toEqual([
      {
        file: "src/a.js",
        line: 3,
        column: 5,
        message: "Unexpected console statement. [Error/no-console]",
      },
      {
        file: "app/models.py",
        line: 12,
        message: "error: Incompatible return value type  [return-value]",
      },
      {
        file: "src/m.c",
        line: 7,
        column: 1,
        message: "warning: control reaches end of non-void function",
      },
    ]);
  });

  it("says clearly when a JSON format gets something else", () => {
    const notJson = () => parseFindings("Oops! Something went wrong", "eslint-json");
    expect(notJson).toThrow(PerpetualSourceError);
    expect(notJson).toThrow(/the output is not the JSON format "eslint-json" expects/);
    expect(() => parseFindings('{"results": []}', "eslint-json")).toThrow(
      /not what "eslint-json" writes \(expected an array of file results\)/,
    );
    expect(() => parseFindings("[]", "biome-json")).toThrow(
      /expected an object with "diagnostics"/,
    );
    try {
      notJson();
    } catch (error) {
      expect((error as PerpetualSourceError).code).toBe("source_output_unreadable");
    }
  });
});

describe("reading a coverage report", () => {
  it("takes each metric from an istanbul summary and branches and functions from lcov", () => {
    const summary = JSON.stringify({
      total: { lines: { total: 4, covered: 2 } },
      "/r/a.js": {
        lines: { total: 4, covered: 2, pct: 50 },
        statements: { total: 5, covered: 2 },
        branches: { total: 2, covered: 1 },
        functions: { total: 1, covered: 1 },
      },
    });
    expect(readCoverageReport(summary, "coverage-summary.json", "auto", "statements")).toEqual([
      { file: "/r/a.js", covered: 2, total: 5 },
    ]);
    const lcov =
      "TN:\nSF:a.js\nFNF:2\nFNH:1\nBRF:4\nBRH:3\nDA:1,1\nDA:2,0\nLF:2\nLH:1\nend_of_record\n";
    expect(readCoverageReport(lcov, "lcov.info", "auto", "branches")).toEqual([
      { file: "a.js", covered: 3, total: 4 },
    ]);
    expect(readCoverageReport(lcov, "x.txt", "lcov", "lines")).toEqual([
      { file: "a.js", covered: 1, total: 2, uncoveredLines: [2] },
    ]);
    expect(() => readCoverageReport(lcov, "lcov.info", "auto", "statements")).toThrow(
      /lcov\.info is lcov, which has no statement counts/,
    );
    expect(() => readCoverageReport(summary, "coverage.json", "auto", "lines")).not.toThrow();
    expect(() =>
      readCoverageReport('{"/r/a.js": {"lines": {}}}', "s.json", "istanbul-summary", "lines"),
    ).toThrow(/its entry for \/r\/a\.js has no lines\.total and lines\.covered/);
    expect(() => readCoverageReport("<xml/>", "s.json", "auto", "lines")).toThrow(/it is not JSON/);
  });
});
