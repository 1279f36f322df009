import { describe, expect, it } from "vitest";
import { ConfigError, configTemplate, parseConfig } from "../../src/config/index.ts";

function problem(toml: string): string {
  try {
    parseConfig(toml, "/repo/nightshift.toml");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("config_invalid");
    return (error as ConfigError).message;
  }
  throw new Error("the config was accepted");
}

describe("[scheduler], [planner], [perpetual], [economics]", () => {
  it("default to scope separation, no perpetual sources, approval, and a $250k salary", () => {
    const config = parseConfig("");
    expect(config.scheduler).toEqual({ scopes: "separate", unscoped: "parallel" });
    expect(config.perpetual).toMatchObject({ sources: [], approval: true, goals_file: "GOALS.md" });
    expect(config.planner).toEqual({ model: "", max_orders: 20 });
    expect(config.economics).toEqual({ salary_usd: 250_000, supervisors: 1 });
  });

  it("the file `nightshift init` writes holds every default", () => {
    const written = parseConfig(configTemplate({ name: "x", branch: "main", test: "npm test" }));
    const empty = parseConfig("");
    for (const key of ["scheduler", "planner", "perpetual", "economics"] as const) {
      expect(written[key]).toEqual(empty[key]);
    }
  });

  it("takes sources, markers and settings", () => {
    const config = parseConfig(
      '[perpetual]\nsources = ["todo", "goals"]\ntodo_markers = ["HACK"]\napproval = false\n[scheduler]\nunscoped = "exclusive"\n',
    );
    expect(config.perpetual.sources).toEqual(["todo", "goals"]);
    expect(config.perpetual.todo_markers).toEqual(["HACK"]);
    expect(config.scheduler.unscoped).toBe("exclusive");
  });

  it("names the key and says what is allowed", () => {
    expect(problem('[perpetual]\nsources = ["todos"]\n')).toMatch(
      /\[perpetual\] sources\.0: must be one of "goals", "tests", "defects", "todo", "lint", "coverage"/,
    );
    expect(problem('[perpetual]\nsources = ["todo", "todo"]\n')).toContain("lists a source twice");
    expect(problem('[perpetual]\ntodo_markers = ["TO DO"]\n')).toContain(
      "must be a word like TODO",
    );
    expect(problem("[perpetual]\nmax_orders_per_round = 0\n")).toContain(
      "[perpetual] max_orders_per_round",
    );
    expect(problem('[perpetual]\nsource = ["todo"]\n')).toContain('unknown key "source"');
    expect(problem('[scheduler]\nunscoped = "sometimes"\n')).toContain("[scheduler] unscoped");
    expect(problem("[economics]\nsalary_usd = -5\n")).toContain("[economics] salary_usd");
    expect(problem("[economics]\nsupervisors = 0\n")).toContain("[economics] supervisors");
    expect(problem("[planner]\nmax_orders = 1000\n")).toContain("[planner] max_orders");
  });

  it("takes lint checks and a coverage source", () => {
    const config = parseConfig(
      [
        "[perpetual]",
        'sources = ["lint", "coverage"]',
        "[perpetual.lint]",
        "timeout_seconds = 120",
        "commands = [",
        '  { name = "types", command = "npx tsc --noEmit --pretty false", format = "tsc" },',
        '  { name = "biome", command = "npx biome lint --reporter=json ." },',
        "]",
        "[perpetual.coverage]",
        'command = "npx vitest run --coverage"',
        'report = "coverage/lcov.info"',
        'metric = "branches"',
        "threshold = 60",
        "",
      ].join("\n"),
    );
    expect(config.perpetual.lint).toEqual({
      timeout_seconds: 120,
      commands: [
        { name: "types", command: "npx tsc --noEmit --pretty false", format: "tsc" },
        { name: "biome", command: "npx biome lint --reporter=json .", format: "auto" },
      ],
    });
    expect(config.perpetual.coverage).toMatchObject({
      command: "npx vitest run --coverage",
      report: "coverage/lcov.info",
      format: "auto",
      metric: "branches",
      threshold: 60,
      timeout_seconds: 900,
    });
  });

  it("says what is wrong with lint checks and the coverage source, and where", () => {
    expect(problem('[perpetual]\nsources = ["lint"]\n')).toMatch(
      /\[perpetual\] lint\.commands: is empty, but sources lists "lint": add a check, e\.g\./,
    );
    const lint = (entry: string) => problem(`[perpetual.lint]\ncommands = [${entry}]\n`);
    expect(lint('{ name = "types", command = "  " }')).toMatch(
      /commands\.0\.command: is empty: give the command line to run/,
    );
    expect(lint('{ name = "my check", command = "x" }')).toContain('must be a word like "types"');
    expect(lint('{ name = "t", command = "x", format = "pylint" }')).toMatch(
      /commands\.0\.format: must be one of "auto", "tsc", "eslint-json", "biome-json", "github", "eslint-compact", "generic"/,
    );
    expect(lint('{ name = "t", command = "x", shell = true }')).toContain('unknown key "shell"');
    expect(lint('{ name = "t", command = "x" }, { name = "t", command = "y" }')).toContain(
      "names a command twice",
    );
    expect(problem("[perpetual.lint]\ntimeout_seconds = 0\n")).toMatch(
      /timeout_seconds: must be a positive number of seconds/,
    );
    const coverage = (line: string) => problem(`[perpetual.coverage]\n${line}\n`);
    expect(coverage("threshold = 0")).toMatch(
      /\[perpetual\] coverage\.threshold: must be a percentage above 0/,
    );
    expect(coverage("threshold = 120")).toContain("must be a percentage, at most 100");
    expect(coverage('report = "../elsewhere/lcov.info"')).toContain(
      "must be a path inside the repository",
    );
    expect(coverage('report = "/tmp/lcov.info"')).toContain("must be a path inside the repository");
    expect(coverage('metric = "statement"')).toMatch(
      /metric: must be one of "lines", "statements"/,
    );
    expect(coverage('format = "lcov"\nmetric = "statements"')).toContain(
      "lcov has no statement counts",
    );
    expect(coverage('format = "cobertura"')).toMatch(
      /format: must be one of "auto", "istanbul-summary", "lcov"/,
    );
  });
});
