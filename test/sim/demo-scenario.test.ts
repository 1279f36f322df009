import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  demoOrders,
  demoPackageJson,
  demoProject,
  demoProjectFiles,
  resolveTsxLoader,
} from "../../src/sim/index.ts";

const run = promisify(execFile);
const loader = resolveTsxLoader();
let root: string;

async function materialise(name: string, patches: Readonly<Record<string, string>>[]) {
  const dir = join(root, name);
  const files: Record<string, string> = demoProjectFiles(loader);
  for (const patch of patches) Object.assign(files, patch);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

async function npmTest(cwd: string, tap = false) {
  const script = JSON.parse(await readFile(join(cwd, "package.json"), "utf8")).scripts
    .test as string;
  // TAP is pinned so the failing test names can be read back whatever Node's default reporter is.
  const command = tap ? script.replace("--test ", "--test --test-reporter=tap ") : script;
  try {
    const { stdout } = await run("sh", ["-c", command], { cwd });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string };
    return { code: failed.code ?? 1, stdout: failed.stdout ?? "" };
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "nightshift-demo-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("demo project", () => {
  it("loads tsx by absolute file URL in its test script", () => {
    const pkg = JSON.parse(demoPackageJson("/opt/tsx/esm/index.mjs"));
    expect(pkg.scripts.test).toBe(
      "node --import file:///opt/tsx/esm/index.mjs --test-reporter=tap scripts/run-tests.mjs",
    );
    expect(loader).toMatch(/tsx/);
    expect(Object.keys(demoProject)).toEqual(
      expect.arrayContaining([
        "README.md",
        ".gitignore",
        "src/capitalize.ts",
        "test/capitalize.test.ts",
      ]),
    );
  });

  it("passes its own tests with every correct patch applied", async () => {
    const dir = await materialise(
      "correct",
      demoOrders.map((o) => o.files),
    );
    const result = await npmTest(dir, true);
    expect(result.stdout).toMatch(/# fail 0/);
    expect(result.code).toBe(0);
    for (const order of demoOrders)
      expect(result.stdout).toMatch(new RegExp(`^ok \\d+ - ${order.key} `, "m"));
    const passed = Number(/# pass (\d+)/.exec(result.stdout)?.[1]);
    expect(passed).toBeGreaterThanOrEqual(2 * (demoOrders.length + 2));
  });

  it("fails a test of every order when its broken patch is applied", async () => {
    const dir = await materialise(
      "broken",
      demoOrders.map((o) => o.brokenFiles),
    );
    const result = await npmTest(dir, true);
    expect(result.code).not.toBe(0);
    const failing = [...result.stdout.matchAll(/^not ok \d+ - (.*)$/gm)].map((m) => m[1] ?? "");
    for (const order of demoOrders) {
      expect(
        failing.some((name) => name.startsWith(`${order.key} `)),
        order.title,
      ).toBe(true);
    }
    expect(failing.some((name) => /^(capitalize|words) /.test(name))).toBe(false);
  });

  it("fails with just one broken patch in an otherwise clean project", async () => {
    const [first] = demoOrders;
    if (!first) throw new Error("no demo orders");
    const dir = await materialise("one-broken", [first.brokenFiles]);
    expect((await npmTest(dir)).code).not.toBe(0);
  });
});
