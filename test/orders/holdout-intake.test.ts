import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrderInputError, parseOrder, readBacklog } from "../../src/orders/index.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "nightshift-holdout-intake-"));
  await mkdir(path.join(dir, "hidden", "slug"), { recursive: true });
  await writeFile(path.join(dir, "hidden", "slug", "unicode.test.ts"), "UNICODE");
  await writeFile(path.join(dir, "hidden", "slug", "dashes.test.ts"), "DASHES");
  await writeFile(path.join(dir, "hidden", "words.test.ts"), "WORDS");
  await mkdir(path.join(dir, "hidden", "empty"));
  await mkdir(path.join(dir, "hidden", "nested", "deeper"), { recursive: true });
  await writeFile(path.join(dir, "hidden", "bad name.ts"), "x");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function backlog(text: string) {
  const file = path.join(dir, `backlog-${Math.random().toString(16).slice(2)}.yaml`);
  await writeFile(file, text);
  return file;
}

async function refusal(fn: () => unknown): Promise<OrderInputError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(OrderInputError);
    return error as OrderInputError;
  }
  throw new Error("expected an OrderInputError");
}

describe("an order's hidden scenarios at intake", () => {
  it("reads a backlog's holdout field (a folder or files, relative to the backlog) and needs_approval", async () => {
    const orders = await readBacklog(
      await backlog(
        [
          "- title: Add slugify",
          "  holdout: hidden/slug",
          "- title: Count words",
          "  holdout: [hidden/words.test.ts]",
          "  needs_approval: true",
          "- title: No hidden scenarios",
        ].join("\n"),
      ),
    );
    expect(orders.map((o) => o.holdout)).toEqual([
      [
        { name: "dashes.test.ts", content: "DASHES" },
        { name: "unicode.test.ts", content: "UNICODE" },
      ],
      [{ name: "words.test.ts", content: "WORDS" }],
      undefined,
    ]);
    expect(orders.map((o) => o.needsApproval ?? false)).toEqual([false, true, false]);
  });

  it("takes --holdout paths relative to the current folder", () => {
    const order = parseOrder(
      { title: "Add slugify", holdout: ["hidden/words.test.ts"] },
      "the order given on the command line",
      dir,
    );
    expect(order.holdout).toEqual([{ name: "words.test.ts", content: "WORDS" }]);
  });

  it("names the order and path of every kind of bad scenario input, and adds nothing", async () => {
    const cases: [string, RegExp][] = [
      ["hidden/nope", /order 1 \("A"\): holdout path "hidden\/nope" does not exist/],
      ["hidden/empty", /holdout folder "hidden\/empty" has no scenario files/],
      ["hidden/nested", /holdout folder "hidden\/nested" holds a folder \(deeper\)/],
      [
        "[hidden/words.test.ts, hidden/words.test.ts]",
        /two scenario files are named "words.test.ts"/,
      ],
      ['"hidden/bad name.ts"', /scenario file name "bad name.ts" must be letters/],
      ["[]", /field "holdout": must list at least one path/],
      ["7", /field "holdout": must be a path or a list of paths/],
    ];
    for (const [value, message] of cases) {
      const error = await refusal(async () =>
        readBacklog(await backlog(`- title: A\n  holdout: ${value}\n- title: B\n`)),
      );
      expect(error.message).toMatch(message);
      expect(error.hint).toMatch(/nothing was added/i);
    }
    const flag = await refusal(() =>
      parseOrder({ title: "A", needs_approval: "yes" }, "the order", dir),
    );
    expect(flag.message).toContain('field "needs_approval": must be true or false');
  });
});
