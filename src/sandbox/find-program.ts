import { accessSync, constants } from "node:fs";
import path from "node:path";

/** The absolute path of a program on PATH, or undefined. */
export function findProgram(name: string, searchPath = process.env.PATH ?? ""): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}
