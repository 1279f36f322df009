import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/index.ts";
import { cli } from "../support/cli.ts";

function configError(text: string): ConfigError {
  try {
    parseConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError, but nothing was thrown");
}

describe("[scale]", () => {
  it("defaults to main on the local branch and two minutes to drain", () => {
    const config = parseConfig("");
    expect(config.scale.remote).toBeUndefined();
    expect(config.scale.drain_seconds).toBe(120);
    expect(parseConfig('[scale]\nremote = "origin"\ndrain_seconds = 30\n').scale).toEqual({
      remote: "origin",
      drain_seconds: 30,
    });
  });

  it("names the key, the value and the fix for a remote that cannot be a git remote's name", () => {
    const error = configError('[scale]\nremote = "--upload-pack=evil"\n');
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain("[scale] remote");
    expect(error.message).toContain("git remote");
  });

  it("names the key and the value for a drain time out of range, and an unknown key", () => {
    expect(configError("[scale]\ndrain_seconds = -1\n").message).toContain("[scale] drain_seconds");
    expect(configError('[scale]\nremotes = "origin"\n').message).toContain("remotes");
  });
});

describe("nightshift worker's options", () => {
  it("refuses a concurrency or drain time out of range with the allowed range, exit 2", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "nightshift-worker-args-"));
    try {
      const zero = await cli(dir, ["worker", "--concurrency", "0"]);
      expect(zero.code).toBe(2);
      expect(zero.stderr).toContain("--concurrency");
      expect(zero.stderr).toContain("from 1 to 64");
      const negative = await cli(dir, ["worker", "--drain-seconds", "-5"]);
      expect(negative.code).toBe(2);
      expect(negative.stderr).toContain("--drain-seconds");
      expect(negative.stderr).toContain("from 0 to 86400");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
