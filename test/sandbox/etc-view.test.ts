import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BubblewrapBackend } from "../../src/sandbox/index.ts";

/**
 * The sandbox's /etc is a copy nightshift makes once per process in the host's tmp; a copy left by
 * a process that did not exit normally is removed by the next one. (Its own file: the copy is
 * made at a process's first sandboxed command.)
 */

const dir = mkdtempSync(join(tmpdir(), "nightshift-etc-view-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the sandbox's copy of /etc", () => {
  it("is made once per process, and a dead process's copy is swept", async () => {
    const dead = spawnSync("true").pid;
    const stale = join(tmpdir(), `nightshift-etc-${dead}-stale`);
    mkdirSync(stale);
    const sandbox = await new BubblewrapBackend().create({ workspacePath: dir });
    try {
      const result = await sandbox.exec({ command: "head -1 /etc/passwd", timeoutMs: 20_000 });
      expect(result.output).toMatch(/^root:/);
    } finally {
      await sandbox.dispose();
    }
    expect(existsSync(stale)).toBe(false);
    const own = readdirSync(tmpdir()).filter((n) => n.startsWith(`nightshift-etc-${process.pid}-`));
    expect(own).toHaveLength(1);
  });
});
