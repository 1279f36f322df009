import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLedger } from "../../src/ledger/index.ts";
import {
  Inbox,
  OrderInputError,
  parseBacklog,
  parseOrder,
  readBacklog,
} from "../../src/orders/index.ts";

const DRIVERS = '"builtin", "claude-code", "codex", "opencode", "gemini-cli"';

/** Runs `fn`, expects an OrderInputError (sync or async), and returns it. */
async function orderError(fn: () => unknown): Promise<OrderInputError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(OrderInputError);
    expect((error as OrderInputError).code).toBe("order_invalid");
    return error as OrderInputError;
  }
  throw new Error("expected an OrderInputError, but nothing was thrown");
}

describe("parseBacklog", () => {
  it("reads a YAML list of orders, with defaults for the fields left out", () => {
    const orders = parseBacklog(
      [
        "- title: Add slugify",
        "  spec: slugify(text) lowercases and joins words with -",
        "  priority: 5",
        "  scope: [src/slug.ts]",
        "  key: slug",
        "- title: Use slugify in routes",
        "  depends_on: [slug]",
        "  max_attempts: 2",
        "  budget_tokens: 10000",
      ].join("\n"),
      "backlog.yaml",
    );
    expect(orders).toEqual([
      {
        title: "Add slugify",
        spec: "slugify(text) lowercases and joins words with -",
        acceptance: "",
        priority: 5,
        scope: ["src/slug.ts"],
        dependsOn: [],
        key: "slug",
        source: "file:backlog.yaml",
      },
      {
        title: "Use slugify in routes",
        spec: "",
        acceptance: "",
        priority: 0,
        scope: [],
        dependsOn: ["slug"],
        maxAttempts: 2,
        budgetTokens: 10_000,
        source: "file:backlog.yaml",
      },
    ]);
  });

  it("reads the `orders:` form", () => {
    const orders = parseBacklog("orders:\n  - title: one\n  - title: two\n    priority: -3\n");
    expect(orders.map((o) => [o.title, o.priority])).toEqual([
      ["one", 0],
      ["two", -3],
    ]);
  });

  it("reads JSON, both as a list and as {orders: [...]}", () => {
    const list = parseBacklog('[{"title": "a", "priority": 2}, {"title": "b"}]', "b.json");
    expect(list.map((o) => o.title)).toEqual(["a", "b"]);
    expect(list[0]?.priority).toBe(2);
    expect(list[0]?.source).toBe("file:b.json");
    const wrapped = parseBacklog('{"orders": [{"title": "c", "acceptance": "tests pass"}]}');
    expect(wrapped).toHaveLength(1);
    expect(wrapped[0]?.acceptance).toBe("tests pass");
  });

  it("reads an order's own driver and model; orders without them get none", () => {
    const orders = parseBacklog(
      [
        "- title: Hard one",
        "  driver: claude-code",
        "  model: claude-opus-4-1",
        "- title: Cheap one",
        "  model: ' sim-fast '",
        "- title: Plain one",
      ].join("\n"),
    );
    expect(orders.map((o) => [o.driver, o.model])).toEqual([
      ["claude-code", "claude-opus-4-1"],
      [undefined, "sim-fast"],
      [undefined, undefined],
    ]);
    expect(orders[2]).not.toHaveProperty("driver");
    expect(orders[2]).not.toHaveProperty("model");
  });

  it("names the order and field of an unknown driver or an empty model, listing the drivers, and adds none", async () => {
    const error = await orderError(() =>
      parseBacklog(
        [
          "- title: fine",
          "  driver: codex",
          "- title: Fix login",
          "  driver: cursor",
          "- title: Blank model",
          '  model: ""',
          "- title: Numbered model",
          "  model: 5",
        ].join("\n"),
        "backlog.yaml",
      ),
    );
    expect(error.message).toContain("backlog.yaml is invalid");
    expect(error.message).toContain(
      `order 2 ("Fix login"), field "driver": must be one of ${DRIVERS}`,
    );
    expect(error.message).toContain('(got "cursor")');
    expect(error.message).toContain('order 3 ("Blank model"), field "model": must not be empty');
    expect(error.message).toContain(
      'order 4 ("Numbered model"), field "model": must be a model name',
    );
    expect(error.message).not.toContain("order 1");
    expect(error.hint).toMatch(/[Nn]othing was added/);
  });

  it("names the order (counted from 1) that has no title", async () => {
    const error = await orderError(() =>
      parseBacklog("- title: first\n- spec: no title here\n- title: third\n", "backlog.yaml"),
    );
    expect(error.message).toContain("backlog.yaml");
    expect(error.message).toContain('order 2, field "title": is required');
    expect(error.message).not.toContain("order 1");
    expect(error.hint).toMatch(/needs a title/);
    expect(error.hint).toMatch(/[Nn]othing was added/);
  });

  it("names the order without a title in the `orders:` form too", async () => {
    const error = await orderError(() =>
      parseBacklog("orders:\n  - title: a\n  - title: b\n  - spec: c\n"),
    );
    expect(error.message).toContain('order 3, field "title"');
  });

  it("rejects an empty title", async () => {
    const error = await orderError(() => parseBacklog('- title: "  "\n'));
    expect(error.message).toContain('order 1, field "title": must not be empty');
  });

  it("names an unknown field, the order it is in, and lists the known fields", async () => {
    const error = await orderError(() =>
      parseBacklog("- title: ok\n- title: Fix login\n  prio: 2\n", "backlog.yaml"),
    );
    expect(error.message).toContain('order 2 ("Fix login")');
    expect(error.message).toContain('unknown field "prio"');
    for (const field of ["title", "spec", "acceptance", "priority", "scope", "depends_on"]) {
      expect(error.message).toContain(field);
    }
  });

  it("gives file:line:column for a YAML syntax error", async () => {
    const error = await orderError(() =>
      parseBacklog("- title: a\n- title: b\n  spec: [unclosed\n- title: c\n", "backlog.yaml"),
    );
    expect(error.message).toMatch(/^backlog\.yaml:\d+:\d+: not valid YAML\/JSON/);
    const line = Number(/^backlog\.yaml:(\d+):/.exec(error.message)?.[1]);
    expect(line).toBeGreaterThanOrEqual(3);
    expect(line).toBeLessThanOrEqual(4);
    expect(error.hint).toMatch(/nothing was added/);
  });

  it("gives the line of a JSON syntax error", async () => {
    const error = await orderError(() =>
      parseBacklog('[\n  {"title": "a"},\n  {"title": "b",,}\n]\n', "b.json"),
    );
    expect(error.message).toMatch(/^b\.json:3:\d+:/);
  });

  it("names the field and shows the value when priority has the wrong type", async () => {
    const error = await orderError(() =>
      parseBacklog("- title: Speed up build\n  priority: high\n", "backlog.yaml"),
    );
    expect(error.message).toContain('order 1 ("Speed up build"), field "priority"');
    expect(error.message).toContain('(got "high")');
  });

  it("rejects a fractional priority and one out of range", async () => {
    const fraction = await orderError(() => parseBacklog("- title: a\n  priority: 1.5\n"));
    expect(fraction.message).toContain('field "priority": must be a whole number (got 1.5)');
    const big = await orderError(() => parseBacklog("- title: a\n  priority: 5000\n"));
    expect(big.message).toContain('field "priority"');
    expect(big.message).toContain("(got 5000)");
  });

  it("reports every bad order, not only the first", async () => {
    const error = await orderError(() =>
      parseBacklog("- spec: x\n- title: ok\n- title: y\n  priority: high\n"),
    );
    expect(error.message).toContain("order 1,");
    expect(error.message).toContain('order 3 ("y")');
  });

  it("rejects an empty file, an empty list, a single mapping and a list of strings", async () => {
    expect((await orderError(() => parseBacklog("", "b.yaml"))).message).toContain(
      "b.yaml is empty",
    );
    expect((await orderError(() => parseBacklog("[]"))).message).toContain(
      "must list at least one order",
    );
    const mapping = await orderError(() => parseBacklog("title: just one\n", "b.yaml"));
    expect(mapping.message).toContain("expected a list of orders");
    expect(mapping.message).toContain('"title"');
    expect(mapping.hint).toContain("- title:");
    const strings = await orderError(() => parseBacklog("- fix the login page\n"));
    expect(strings.message).toContain("order 1");
    expect(strings.message).toContain('(got "fix the login page")');
  });

  it("rejects a key that other orders could not name", async () => {
    const error = await orderError(() => parseBacklog('- title: a\n  key: "has spaces"\n'));
    expect(error.message).toContain('field "key"');
  });
});

describe("readBacklog", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "nightshift-intake-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a file and names it as the orders' source", async () => {
    const file = path.join(dir, "sprint.yaml");
    await writeFile(file, "- title: a\n- title: b\n");
    const orders = await readBacklog(file);
    expect(orders.map((o) => o.source)).toEqual(["file:sprint.yaml", "file:sprint.yaml"]);
  });

  it("names the file in validation errors", async () => {
    const file = path.join(dir, "bad.yaml");
    await writeFile(file, "- title: a\n  priority: high\n");
    const error = await orderError(() => readBacklog(file));
    expect(error.message).toContain("bad.yaml is invalid");
  });

  it("gives a clear error for a path that cannot be read", async () => {
    const missing = path.join(dir, "nope.yaml");
    const error = await orderError(() => readBacklog(missing));
    expect(error.message).toContain(`cannot read backlog file ${missing}`);
    expect(error.message).toContain("ENOENT");
    expect(error.hint).toMatch(/path/);
  });

  it("gives a clear error for a directory given as the file", async () => {
    const error = await orderError(() => readBacklog(dir));
    expect(error.message).toContain(`cannot read backlog file ${dir}`);
    expect(error.message).toContain("EISDIR");
  });
});

describe("parseOrder", () => {
  it("gives an order from CLI flags with its defaults", () => {
    expect(parseOrder({ title: "Add slugify", priority: 3 })).toEqual({
      title: "Add slugify",
      spec: "",
      acceptance: "",
      priority: 3,
      scope: [],
      dependsOn: [],
      source: "cli",
    });
  });

  it("gives an order its own driver and model from CLI flags", () => {
    expect(parseOrder({ title: "t", driver: "gemini-cli", model: "gemini-2.5-pro" })).toMatchObject(
      { driver: "gemini-cli", model: "gemini-2.5-pro" },
    );
  });

  it("refuses an unknown driver, listing the known ones, and an empty model", async () => {
    const bad = await orderError(() =>
      parseOrder({ title: "t", driver: "claude" }, "the order given on the command line"),
    );
    expect(bad.message).toContain("the order given on the command line is invalid");
    expect(bad.message).toContain(`field "driver": must be one of ${DRIVERS}`);
    expect(bad.message).toContain('(got "claude")');
    const empty = await orderError(() => parseOrder({ title: "t", model: " " }));
    expect(empty.message).toContain('field "model": must not be empty');
  });

  it("trims the title", () => {
    expect(parseOrder({ title: "  padded  " }).title).toBe("padded");
  });

  it("names the source and the field, and shows the value", async () => {
    const error = await orderError(() =>
      parseOrder({ title: "t", priority: "abc" }, "the order given on the command line"),
    );
    expect(error.message).toContain("the order given on the command line is invalid");
    expect(error.message).toContain('field "priority"');
    expect(error.message).toContain('(got "abc")');
    expect(error.hint).toContain("nightshift add --help");
  });

  it("says the title is required when it is missing", async () => {
    const error = await orderError(() => parseOrder({}));
    expect(error.message).toContain('field "title": is required');
  });

  it("rejects an unknown field, listing the known ones", async () => {
    const error = await orderError(() => parseOrder({ title: "t", owner: "me" }));
    expect(error.message).toContain('unknown field "owner"');
    expect(error.message).toContain("known: title, spec");
  });

  it("rejects a title over 200 characters", async () => {
    const error = await orderError(() => parseOrder({ title: "x".repeat(201) }));
    expect(error.message).toContain("at most 200 characters");
  });
});

describe("Inbox", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "nightshift-inbox-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("takes in an order's driver and model, and refuses a whole file with a bad one", async () => {
    const ledger = await openLedger({ kind: "memory" });
    try {
      const inbox = new Inbox(path.join(dir, "inbox"));
      await inbox.put([parseOrder({ title: "own agent", driver: "codex", model: "gpt-5" })]);
      // A file no `nightshift add` wrote: the line must not meet the bad name only at run time.
      await writeFile(
        path.join(inbox.dir, "999999999999999-deadbeef.json"),
        JSON.stringify([{ title: "fine" }, { title: "Odd agent", driver: "cursor" }]),
      );

      const { added, rejected } = await inbox.drain(ledger);

      expect(added.map((o) => [o.title, o.driver, o.model])).toEqual([
        ["own agent", "codex", "gpt-5"],
      ]);
      expect(rejected).toHaveLength(1);
      expect(rejected[0]?.reason).toContain('order 2 ("Odd agent"), field "driver"');
      expect(rejected[0]?.reason).toContain(DRIVERS);
      expect((await ledger.listOrders()).map((o) => o.title)).toEqual(["own agent"]);
      const kept = await readdir(path.join(inbox.dir, "rejected"));
      expect(kept).toContain("999999999999999-deadbeef.json");
      expect(
        await readFile(
          path.join(inbox.dir, "rejected", "999999999999999-deadbeef.json.reason.txt"),
          "utf8",
        ),
      ).toContain("cursor");
    } finally {
      await ledger.close();
    }
  });
});
