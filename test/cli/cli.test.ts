import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/index.ts";
import { git, makeRepo as makeRepoIn, cli as runCli, TempDirs } from "../support/cli.ts";

// The real CLI in a child process on real git repositories and the embedded PGlite ledger. Each
// spawn costs a second or two, so related cases share one repository and run in order.

const temps = new TempDirs();
const cli = (cwd: string, ...args: string[]) => runCli(cwd, args);
const makeRepo = () => makeRepoIn(temps);
const tempDir = (prefix: string) => temps.make(prefix);

interface StatusOrder {
  id: number;
  title: string;
  spec: string;
  priority: number;
  status: string;
  source: string;
  driver: string | null;
  model: string | null;
}

async function statusOrders(dir: string): Promise<StatusOrder[]> {
  // --dir from elsewhere, to cover the global option too.
  const result = await cli(tmpdir(), "--dir", dir, "status", "--json");
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const status = JSON.parse(result.stdout) as { orders: StatusOrder[]; runs: unknown[] };
  expect(status.runs).toEqual([]);
  return status.orders;
}

afterAll(() => temps.removeAll());

describe("nightshift init, add and status on one repository", () => {
  let repo: string;
  let configFile: string;
  beforeAll(async () => {
    repo = await makeRepo();
    configFile = path.join(repo, "nightshift.toml");
  });

  it("init writes a nightshift.toml that parses, named after the repository", async () => {
    const result = await cli(repo, "init");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`wrote ${configFile}`);
    const config = parseConfig(await readFile(configFile, "utf8"), configFile);
    expect(config.factory.name).toBe(path.basename(repo));
    expect(config.factory.branch).toBe("main");
  });

  it("init refuses to overwrite an existing file without --force, and keeps the user's edits", async () => {
    const edited = `${await readFile(configFile, "utf8")}\n# my own note\n`;
    await writeFile(configFile, edited);
    const refused = await cli(repo, "init");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${configFile} already exists`);
    expect(refused.stderr).toContain("--force");
    expect(await readFile(configFile, "utf8")).toBe(edited);

    const forced = await cli(repo, "init", "--force", "--test", "make check");
    expect(forced.code).toBe(0);
    const text = await readFile(configFile, "utf8");
    expect(text).not.toContain("# my own note");
    expect(parseConfig(text).gates.test).toBe("make check");
  });

  it("add queues an order with the priority and spec given", async () => {
    const result = await cli(repo, "add", "Add slugify", "--spec", "x", "--priority", "3");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^queued WO-1: Add slugify$/m);
  });

  it("add --file queues every order of a backlog", async () => {
    const backlog = path.join(repo, "backlog.yaml");
    await writeFile(
      backlog,
      "- title: first from file\n  priority: 1\n  key: first\n- title: second from file\n  depends_on: [first]\n",
    );
    const result = await cli(repo, "add", "--file", "backlog.yaml");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("queued WO-2: first from file");
    expect(result.stdout).toContain("queued WO-3: second from file");

    const orders = await statusOrders(repo);
    expect(orders.map((o) => [o.title, o.priority, o.status, o.source])).toEqual([
      ["Add slugify", 3, "queued", "cli"],
      ["first from file", 1, "queued", "file:backlog.yaml"],
      ["second from file", 0, "queued", "file:backlog.yaml"],
    ]);
    expect(orders[0]?.spec).toBe("x");
  });

  it("a backlog with one bad order adds none of its orders and names the bad one", async () => {
    await writeFile(
      path.join(repo, "bad.yaml"),
      "- title: good one\n- title: good two\n- title: Broken\n  priority: high\n",
    );
    const result = await cli(repo, "add", "--file", "bad.yaml");
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("bad.yaml is invalid");
    expect(result.stderr).toContain('order 3 ("Broken"), field "priority"');
    expect(result.stderr).toContain('(got "high")');
    expect(result.stderr).toMatch(/[Nn]othing was added/);
  });

  it("a backlog the ledger rejects (unknown dependency) adds none of its orders", async () => {
    await writeFile(
      path.join(repo, "deps.yaml"),
      "- title: fine\n- title: Needs ghost\n  depends_on: [ghost]\n",
    );
    const result = await cli(repo, "add", "--file", "deps.yaml");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"Needs ghost"');
    expect(result.stderr).toContain('unknown key "ghost"');
  });

  it("add with neither a title nor a file says how to give one", async () => {
    const result = await cli(repo, "add", "--spec", "only a spec");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("give a title");
    expect(result.stderr).toContain("--file");
  });

  it("add with a priority that is not a number names the priority", async () => {
    const result = await cli(repo, "add", "t", "--priority", "abc");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('field "priority"');
    expect(result.stderr).toContain('(got "abc")');
    expect(result.stderr).toContain("nightshift add --help");
  });

  it("add with an unknown --driver names the field and the drivers there are, and adds nothing", async () => {
    const result = await cli(repo, "add", "Odd agent", "--driver", "cursor", "--model", "gpt-5");
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("the order given on the command line is invalid");
    expect(result.stderr).toContain(
      'field "driver": must be one of "builtin", "claude-code", "codex", "opencode", "gemini-cli"',
    );
    expect(result.stderr).toContain('(got "cursor")');
    const blank = await cli(repo, "add", "Blank model", "--model", "");
    expect(blank.code).toBe(2);
    expect(blank.stderr).toContain('field "model": must not be empty');
  });

  it("after the rejected adds, the ledger holds exactly the earlier orders", async () => {
    const orders = await statusOrders(repo);
    expect(orders.map((o) => o.title)).toEqual([
      "Add slugify",
      "first from file",
      "second from file",
    ]);
  });

  it("add --driver --model gives the order its own agent, which status shows", async () => {
    const result = await cli(
      repo,
      "add",
      "Hard one",
      "--driver",
      "claude-code",
      "--model",
      "claude-opus-4-1",
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^queued WO-4: Hard one$/m);
    const orders = await statusOrders(repo);
    expect(orders.map((o) => [o.title, o.driver, o.model])).toEqual([
      ["Add slugify", null, null],
      ["first from file", null, null],
      ["second from file", null, null],
      ["Hard one", "claude-code", "claude-opus-4-1"],
    ]);
    const status = await cli(repo, "status");
    expect(status.code).toBe(0);
    const lines = status.stdout.split("\n");
    expect(lines.find((l) => l.startsWith("WO-4 "))).toContain("[claude-code/claude-opus-4-1]");
    // Orders on the factory's own agent stay as they were.
    expect(lines.find((l) => l.startsWith("WO-1 "))).not.toContain("[");
  });

  it("run --concurrency 0 is refused before anything runs, naming --concurrency", async () => {
    const result = await cli(repo, "run", "--concurrency", "0");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--concurrency");
    expect(result.stderr).toContain("from 1 to 64");
    expect(result.stdout).toBe("");
    const orders = await statusOrders(repo);
    expect(orders.every((o) => o.status === "queued")).toBe(true);
  });
});

describe("nightshift on a repository without a usable nightshift.toml", () => {
  let repo: string;
  beforeAll(async () => {
    repo = await makeRepo();
  });

  it("status without nightshift.toml says to run nightshift init", async () => {
    const result = await cli(repo, "status");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`no nightshift.toml in ${repo}`);
    expect(result.stderr).toContain("nightshift init");
    expect(existsSync(path.join(repo, ".nightshift"))).toBe(false);
  });

  it("run with a misspelt key names the key and does nothing else", async () => {
    const text = '[line]\nconcurency = 2\n[gates]\ntest = "true"\n';
    await writeFile(path.join(repo, "nightshift.toml"), text);
    const head = git(repo, "rev-parse", "HEAD");
    const result = await cli(repo, "run");
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain('[line]: unknown key "concurency"');
    expect(result.stderr).toContain('did you mean "concurrency"?');
    // Nothing else happened: no state folder, no ledger, no branch moved, the file untouched.
    expect(existsSync(path.join(repo, ".nightshift"))).toBe(false);
    expect(git(repo, "rev-parse", "HEAD")).toBe(head);
    expect(git(repo, "status", "--porcelain")).toBe("?? nightshift.toml");
    expect(await readFile(path.join(repo, "nightshift.toml"), "utf8")).toBe(text);
  });
});

describe("nightshift outside a git repository", () => {
  it("init refuses with a clear message and writes nothing", async () => {
    const dir = await tempDir("nightshift-nogit-");
    const result = await cli(dir, "init");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${dir} is not a git repository`);
    expect(result.stderr).toContain("git init");
    expect(existsSync(path.join(dir, "nightshift.toml"))).toBe(false);
  });
});
