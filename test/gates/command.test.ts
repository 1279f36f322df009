import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createCommandGate,
  createTestGate,
  type Gate,
  GateError,
  type GateOutcome,
  runGates,
} from "../../src/gates/index.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "nightshift-gates-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ctx = () => ({ workspacePath: dir, commit: "0".repeat(40) });

describe("command gate", () => {
  it("passes on exit 0 and runs in the workspace with stdout and stderr interleaved", async () => {
    const gate = createCommandGate({
      name: "build",
      command: "pwd; echo out; echo err >&2; echo out2",
    });
    const outcome = await gate.run(ctx());
    expect(outcome).toMatchObject({ gate: "build", passed: true, exitCode: 0, timedOut: false });
    expect(outcome.output).toBe(`${dir}\nout\nerr\nout2\n`);
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("fails with the command's exit code", async () => {
    const outcome = await createTestGate({ command: "echo 'not ok 1 - adds'; exit 3" }).run(ctx());
    expect(outcome).toMatchObject({ gate: "test", passed: false, exitCode: 3, timedOut: false });
    expect(outcome.output).toContain("not ok 1 - adds");
  });

  it("passes the context's env on top of the scrubbed base", async () => {
    const gate = createCommandGate({ name: "env", command: 'echo "extra=$EXTRA ci=$CI"' });
    const outcome = await gate.run({ ...ctx(), env: { EXTRA: "yes" } });
    expect(outcome.output).toBe("extra=yes ci=1\n");
    expect(outcome.passed).toBe(true);
  });

  it("applies its output cap", async () => {
    const gate = createCommandGate({
      name: "noisy",
      command: "for i in $(seq 1 20000); do echo line $i; done; exit 1",
      maxOutputBytes: 4096,
    });
    const outcome = await gate.run(ctx());
    expect(outcome.passed).toBe(false);
    expect(outcome.output).toContain("line 20000\n");
    expect(outcome.output).toMatch(/bytes of output omitted/);
    expect(Buffer.byteLength(outcome.output)).toBeLessThan(4096 + 200);
  });

  it("fails on timeout and says so, escalating to SIGKILL after its grace", async () => {
    const gate = createCommandGate({
      name: "stubborn",
      command: "echo started; trap '' TERM; sleep 100",
      timeoutMs: 200,
      killGraceMs: 300,
    });
    const started = Date.now();
    const outcome = await gate.run(ctx());
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(outcome).toMatchObject({ passed: false, exitCode: null, timedOut: true });
    expect(outcome.output).toContain("started");
    expect(outcome.output).toContain("timed out after 200 ms");
  });

  it("stops on abort and reports it as an error, not a verdict", async () => {
    const controller = new AbortController();
    const gate = createCommandGate({ name: "slow", command: "sleep 100" });
    setTimeout(() => controller.abort(), 200);
    const error = await gate.run({ ...ctx(), signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GateError);
    expect((error as GateError).code).toBe("gate_aborted");
  });

  it("does not start when already aborted", async () => {
    const gate = createCommandGate({ name: "slow", command: "sleep 100" });
    const error = await gate
      .run({ ...ctx(), signal: AbortSignal.abort() })
      .catch((e: unknown) => e);
    expect((error as GateError).code).toBe("gate_aborted");
  });

  it("reports a missing workspace and bad options as typed errors", async () => {
    const gate = createCommandGate({ name: "x", command: "true" });
    const error = await gate
      .run({ workspacePath: join(dir, "gone"), commit: "x" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GateError);
    expect((error as GateError).code).toBe("gate_could_not_start");
    expect((error as GateError).message).toContain("is not a directory");
    expect(() => createCommandGate({ name: "x", command: " " })).toThrow(GateError);
    expect(() => createTestGate({ command: "true", timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});

describe("runGates", () => {
  it("runs gates in order and stops at the first failure", async () => {
    const ran: string[] = [];
    const spy = (name: string, passed: boolean): Gate => ({
      name,
      run: async (): Promise<GateOutcome> => {
        ran.push(name);
        return {
          gate: name,
          passed,
          exitCode: passed ? 0 : 1,
          output: "",
          durationMs: 0,
          timedOut: false,
        };
      },
    });
    const result = await runGates(
      [spy("lint", true), spy("test", false), spy("review", true)],
      ctx(),
    );
    expect(ran).toEqual(["lint", "test"]);
    expect(result.passed).toBe(false);
    expect(result.outcomes.map((o) => [o.gate, o.passed])).toEqual([
      ["lint", true],
      ["test", false],
    ]);
  });

  it("passes when every real command gate passes", async () => {
    const marker = join(dir, "order");
    const gates = ["a", "b", "c"].map((n) =>
      createCommandGate({ name: n, command: `echo ${n} >> ${marker}` }),
    );
    const result = await runGates(gates, ctx());
    expect(result.passed).toBe(true);
    expect(result.outcomes).toHaveLength(3);
    expect(readFileSync(marker, "utf8")).toBe("a\nb\nc\n");
  });

  it("stops a real pipeline at a failing command", async () => {
    const marker = join(dir, "ran-after");
    const result = await runGates(
      [
        createCommandGate({ name: "typecheck", command: "exit 2" }),
        createTestGate({ command: `touch ${marker}` }),
      ],
      ctx(),
    );
    expect(result).toMatchObject({ passed: false, outcomes: [{ gate: "typecheck", exitCode: 2 }] });
    expect(() => readFileSync(marker)).toThrow();
  });
});
