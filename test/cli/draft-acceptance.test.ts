import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli, git, makeRepo, TempDirs } from "../support/cli.ts";

// `nightshift draft-acceptance` through the real CLI. The simulator's labelled stand-in writes no
// scenarios, so this is the path a person sees when the model's answer is unusable.

const temps = new TempDirs();
afterAll(() => temps.removeAll());

describe("nightshift draft-acceptance", () => {
  it("refuses an unusable draft with the reason, stores nothing, and leaves the order as it was", async () => {
    const repo = await makeRepo(temps, {
      "package.json": '{ "name": "shop", "private": true, "scripts": { "test": "node --test" } }\n',
    });
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    const config = path.join(repo, "nightshift.toml");
    await writeFile(
      config,
      (await readFile(config, "utf8")).replace('command = ""', 'command = "node --test {file}"'),
    );
    git(repo, "checkout", "--quiet", "--detach");
    const added = await cli(repo, [
      "add",
      "Add slugify(text)",
      "--acceptance",
      'slugify("Hello, World!") === "hello-world"',
    ]);
    expect(added.code).toBe(0);

    const draft = await cli(repo, ["draft-acceptance", "WO-1"]);
    expect(draft.code).not.toBe(0);
    expect(draft.stderr).toContain("nothing was stored");

    const status = JSON.parse((await cli(repo, ["status", "--json"])).stdout) as {
      orders: { status: string }[];
    };
    expect(status.orders.map((o) => o.status)).toEqual(["queued"]);
  });

  it("names the order it cannot find", async () => {
    const repo = await makeRepo(temps);
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    const draft = await cli(repo, ["draft-acceptance", "WO-42"]);
    expect(draft.code).not.toBe(0);
    expect(draft.stderr).toContain("WO-42");
  });
});
