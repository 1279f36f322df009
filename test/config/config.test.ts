import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CONFIG_FILE,
  ConfigError,
  configTemplate,
  loadConfig,
  parseConfig,
  resolveProviders,
} from "../../src/config/index.ts";

/** Runs `fn`, expects it to throw a ConfigError, and returns that error. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError, but nothing was thrown");
}

describe("parseConfig", () => {
  it("gives every default for an empty file", () => {
    const config = parseConfig("");
    expect(config.factory).toEqual({ name: "factory", branch: "main", state_dir: ".nightshift" });
    expect(config.line).toEqual({
      concurrency: 2,
      max_attempts: 3,
      poll_interval_ms: 2_000,
      lease_seconds: 60,
    });
    // No provider is ever assumed: the simulator in particular must be asked for.
    expect(config.providers).toEqual({});
    expect(resolveProviders(config)).toEqual([]);
    expect(config.agent.driver).toBe("builtin");
    expect(config.gates.test).toBe("npm test");
  });

  it("keeps the keys given and defaults the rest of the section", () => {
    const config = parseConfig('[line]\nconcurrency = 5\n[gates]\ntest = "make test"\n');
    expect(config.line.concurrency).toBe(5);
    expect(config.line.max_attempts).toBe(3);
    expect(config.gates.test).toBe("make test");
  });

  it("accepts the file `nightshift init` writes", () => {
    const config = parseConfig(configTemplate({ name: "shop", branch: "trunk", test: "pytest" }));
    expect(config.factory.name).toBe("shop");
    expect(config.factory.branch).toBe("trunk");
    expect(config.gates.test).toBe("pytest");
  });

  it("names the section and the misspelt key, and suggests the right one", () => {
    const error = configError(() =>
      parseConfig("[line]\nconcurency = 2\n", "/repo/nightshift.toml"),
    );
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain("/repo/nightshift.toml");
    expect(error.message).toContain("[line]");
    expect(error.message).toContain('unknown key "concurency"');
    expect(error.message).toContain('did you mean "concurrency"?');
    expect(error.hint).toMatch(/nightshift init --print/);
    expect(error.details.problems).toHaveLength(1);
  });

  it("names the key and shows the value given when the type is wrong", () => {
    const error = configError(() => parseConfig('[line]\nmax_attempts = "three"\n'));
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain("[line] max_attempts");
    expect(error.message).toContain('(got "three")');
    expect(error.message).toMatch(/expected number/);
  });

  it("names the key and the value when it is out of range", () => {
    const error = configError(() => parseConfig("[line]\nconcurrency = 0\n"));
    expect(error.message).toContain("[line] concurrency");
    expect(error.message).toContain("(got 0)");
  });

  it("reports every problem at once, not only the first", () => {
    const error = configError(() =>
      parseConfig('[line]\nconcurrency = "many"\n[gates]\ntimeout = 5\n'),
    );
    expect(error.message).toContain("[line] concurrency");
    expect(error.message).toContain('[gates]: unknown key "timeout"');
    expect(error.details.problems).toHaveLength(2);
  });

  it("gives file:line:column for a TOML syntax error", () => {
    const error = configError(() =>
      parseConfig('[factory]\nname = "ok"\nbranch = \n', "/repo/nightshift.toml"),
    );
    expect(error.code).toBe("config_syntax");
    expect(error.message).toMatch(/^\/repo\/nightshift\.toml:3:\d+: not valid TOML/);
    expect(error.hint).toBeTruthy();
  });

  it("gives the line of an unclosed table header", () => {
    const error = configError(() => parseConfig("\n\n[line\nconcurrency = 2\n"));
    expect(error.code).toBe("config_syntax");
    expect(error.message).toMatch(/^nightshift\.toml:3:\d+:/);
  });

  it('rejects provider "openai-compatible" without base_url, naming [model] base_url', () => {
    const error = configError(() => parseConfig('[model]\nprovider = "openai-compatible"\n'));
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain("[model] base_url");
    expect(error.message).toContain("openai-compatible");
  });

  it("reads the old single-provider [model] section as one provider", () => {
    const config = parseConfig(
      '[model]\nprovider = "openai-compatible"\nbase_url = "http://127.0.0.1:4010/v1"\n',
    );
    expect(resolveProviders(config)).toMatchObject([
      {
        name: "openai-compatible",
        baseURL: "http://127.0.0.1:4010/v1",
        apiKeyEnv: "OPENAI_API_KEY",
      },
    ]);
  });

  it("rejects an unknown section, suggesting the known one and listing them all", () => {
    const error = configError(() => parseConfig("[lines]\nconcurrency = 2\n"));
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain('unknown key "lines"');
    expect(error.message).toContain('did you mean "line"?');
    for (const section of ["agent", "factory", "gates", "model", "line"]) {
      expect(error.message).toContain(section);
    }
  });

  it("does not suggest a key when nothing is close", () => {
    const error = configError(() => parseConfig("[line]\nxyzzy = 1\n"));
    expect(error.message).toContain('unknown key "xyzzy"');
    expect(error.message).not.toContain("did you mean");
    expect(error.message).toContain("known keys: concurrency");
  });
});

describe("loadConfig", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "nightshift-config-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("without required, uses the defaults when there is no file", async () => {
    const loaded = await loadConfig(dir);
    expect(loaded.file).toBeNull();
    expect(loaded.root).toBe(path.resolve(dir));
    expect(loaded.config).toEqual(parseConfig(""));
  });

  it("with required, a missing file is config_missing with a hint to run nightshift init", async () => {
    const error = await loadConfig(dir, { required: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    const configErr = error as ConfigError;
    expect(configErr.code).toBe("config_missing");
    expect(configErr.message).toContain(CONFIG_FILE);
    expect(configErr.message).toContain(path.resolve(dir));
    expect(configErr.hint).toContain("nightshift init");
  });

  it("reads the file and names its absolute path in errors", async () => {
    const file = path.join(dir, CONFIG_FILE);
    await writeFile(file, "[line]\nconcurrency = 4\n");
    const loaded = await loadConfig(dir, { required: true });
    expect(loaded.file).toBe(file);
    expect(loaded.config.line.concurrency).toBe(4);

    await writeFile(file, "[line]\nconcurency = 4\n");
    const error = await loadConfig(dir).then(
      () => undefined,
      (e: unknown) => e as ConfigError,
    );
    expect(error?.code).toBe("config_invalid");
    expect(error?.message).toContain(file);
    expect(error?.message).toContain('"concurency"');
  });
});
