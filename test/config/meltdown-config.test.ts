import { describe, expect, it } from "vitest";
import { watchdogLimits } from "../../src/cli/factory.ts";
import { ConfigError, configTemplate, parseConfig } from "../../src/config/index.ts";

function problem(text: string): string {
  try {
    parseConfig(text, "/repo/nightshift.toml");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("config_invalid");
    return (error as ConfigError).message;
  }
  throw new Error("expected a ConfigError");
}

describe("[watchdog], [circuit_breaker] and [retention]", () => {
  it("have sane defaults, and the template shows them", () => {
    const config = parseConfig("");
    expect(config.watchdog).toEqual({
      stall_seconds: 600,
      loop_repeats: 6,
      max_output_mb: 32,
      escape_limit: 10,
      check_seconds: 5,
      on_meltdown: "retry",
    });
    expect(config.circuit_breaker).toEqual({
      enabled: true,
      window: 10,
      failures: 5,
      cool_down_minutes: 15,
    });
    expect(config.retention).toEqual({
      keep_transcripts: 500,
      max_transcripts_mb: 1_024,
      max_log_mb: 50,
      keep_logs: 5,
      check_minutes: 10,
    });
    const fromTemplate = parseConfig(configTemplate({ name: "f", branch: "main", test: "t" }));
    expect(fromTemplate.watchdog).toEqual(config.watchdog);
    expect(fromTemplate.circuit_breaker).toEqual(config.circuit_breaker);
    expect(fromTemplate.retention).toEqual(config.retention);
  });

  it("become the line's watchdog limits", () => {
    const config = parseConfig(
      '[watchdog]\nstall_seconds = 900\nmax_tokens_per_run = 200000\nmax_usd_per_run = 2.5\nmax_output_mb = 1\non_meltdown = "fail"\n',
    );
    expect(watchdogLimits(config)).toEqual({
      stallMs: 900_000,
      loopRepeats: 6,
      maxTokens: 200_000,
      maxUsd: 2.5,
      maxOutputBytes: 1024 * 1024,
      escapeLimit: 10,
      checkIntervalMs: 5_000,
      onMeltdown: "fail",
    });
  });

  it("refuse bad values, naming the key and the fix", () => {
    expect(problem('[watchdog]\non_meltdown = "ignore"\n')).toMatch(
      /\[watchdog\] on_meltdown.*"retry".*"fail"/s,
    );
    expect(problem("[watchdog]\nloop_repeats = 1\n")).toContain("[watchdog] loop_repeats");
    expect(problem("[watchdog]\nmax_usd_per_run = -1\n")).toMatch(
      /\[watchdog\] max_usd_per_run.*positive amount of US dollars/,
    );
    expect(problem("[watchdog]\nstal_seconds = 60\n")).toContain('did you mean "stall_seconds"?');
    expect(problem("[watchdog]\nstall_seconds = 60\n")).toMatch(
      /\[watchdog\] stall_seconds.*command_timeout_seconds is 300.*make stall_seconds larger/,
    );
    expect(problem("[circuit_breaker]\nwindow = 3\nfailures = 4\n")).toMatch(
      /\[circuit_breaker\] failures.*make failures at most window/,
    );
    expect(problem("[circuit_breaker]\ncool_down_minutes = -5\n")).toContain(
      "[circuit_breaker] cool_down_minutes",
    );
    expect(problem("[retention]\nkeep_transcripts = 0\n")).toContain(
      "[retention] keep_transcripts",
    );
  });
});
