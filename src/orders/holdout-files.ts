import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { OrderInputError } from "./errors.ts";

/** A scenario bigger than this is almost certainly not a test file (a fixture dump, a binary). */
const MAX_SCENARIO_BYTES = 256 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Reads an order's hidden scenarios from files and folders (a folder gives its top-level files),
 * relative to `baseDir` (the backlog file's folder, or the current one for `--holdout`). The files
 * are copied into the ledger, so they may stay where they are or go: the agent never sees either.
 * Every problem is an OrderInputError naming the path, and nothing is added.
 */
export function readScenarioFiles(
  paths: string[],
  baseDir: string,
  where: string,
): { name: string; content: string }[] {
  const bad = (message: string, hint: string) =>
    new OrderInputError(`${where}: ${message}`, `${hint}; nothing was added`);
  const files: { name: string; full: string }[] = [];
  for (const given of paths) {
    const full = path.resolve(baseDir, given);
    const info = statSync(full, { throwIfNoEntry: false });
    if (!info) {
      throw bad(
        `holdout path ${JSON.stringify(given)} does not exist (looked at ${full})`,
        "give scenario files or folders of them, relative to the backlog file (or the current folder for --holdout)",
      );
    }
    if (info.isFile()) {
      files.push({ name: path.basename(full), full });
      continue;
    }
    const entries = readdirSync(full, { withFileTypes: true }).filter(
      (e) => !e.name.startsWith("."),
    );
    const folder = entries.find((e) => e.isDirectory());
    if (folder) {
      throw bad(
        `holdout folder ${JSON.stringify(given)} holds a folder (${folder.name}); scenario folders hold files only`,
        "move helper files next to the scenarios, or list the scenario files one by one",
      );
    }
    const inside = entries.filter((e) => e.isFile());
    if (inside.length === 0) {
      throw bad(
        `holdout folder ${JSON.stringify(given)} has no scenario files`,
        "put the order's hidden tests in it, or leave the field out",
      );
    }
    for (const e of inside.sort((a, b) => a.name.localeCompare(b.name))) {
      files.push({ name: e.name, full: path.join(full, e.name) });
    }
  }
  const seen = new Set<string>();
  return files.map(({ name, full }) => {
    if (!NAME.test(name)) {
      throw bad(
        `scenario file name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-'`,
        "rename the file",
      );
    }
    if (seen.has(name)) {
      throw bad(
        `two scenario files are named ${JSON.stringify(name)}`,
        "rename one: an order's scenarios need distinct names",
      );
    }
    seen.add(name);
    const size = statSync(full).size;
    if (size > MAX_SCENARIO_BYTES) {
      throw bad(
        `scenario ${JSON.stringify(name)} is ${size} bytes; at most ${MAX_SCENARIO_BYTES} are allowed`,
        "keep scenarios to test files",
      );
    }
    return { name, content: readFileSync(full, "utf8") };
  });
}
