import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.ts";
import { scaleSection } from "../../src/config/schema.ts";

const UNIT = new URL("../../docs/deploy/nightshift-worker.service", import.meta.url);

/** A systemd unit as sections of key/value pairs (systemd's own syntax: no quoting used here). */
function parseUnit(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header?.[1]) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!pair?.[1] || pair[2] === undefined || !current) {
      throw new Error(`line ${index + 1} is not "Key=value" inside a section: ${raw}`);
    }
    current.set(pair[1], pair[2]);
  }
  return sections;
}

describe("the systemd unit in docs/deploy", () => {
  it("runs `nightshift worker` with options the CLI accepts, and stops by draining in time", async () => {
    const unit = parseUnit(await readFile(UNIT, "utf8"));
    expect([...unit.keys()]).toEqual(["Unit", "Service", "Install"]);
    const service = unit.get("Service") as Map<string, string>;
    const [bin, command, ...args] = (service.get("ExecStart") ?? "").split(/\s+/);
    expect(bin).toMatch(/^\/.*\/nightshift$/);
    expect(command).toBe("worker");
    const worker = buildProgram().commands.find((c) => c.name() === "worker");
    const known = new Set(worker?.options.flatMap((o) => [o.long, o.short]).filter(Boolean));
    for (const arg of args.filter((a) => a.startsWith("-"))) expect(known).toContain(arg);

    expect(service.get("KillSignal")).toBe("SIGTERM");
    // Only the worker hears SIGTERM; its agents are stopped by it, not killed under it.
    expect(service.get("KillMode")).toBe("mixed");
    const drainSeconds = scaleSection.parse({}).drain_seconds;
    expect(Number(service.get("TimeoutStopSec"))).toBeGreaterThan(drainSeconds);
    expect(service.get("Restart")).toBe("on-failure");
    expect(unit.get("Install")?.get("WantedBy")).toBe("multi-user.target");
  });
});
