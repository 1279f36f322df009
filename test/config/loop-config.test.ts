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
      /\[perpetual\] sources\.0: must be one of "goals", "tests", "defects", "todo"/,
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
});
