import { lstat, mkdir, readdir, readFile, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import { NightshiftError } from "../errors/index.ts";
import { type RunSandbox, runCommand } from "../sandbox/index.ts";
import type { AgentEventSink } from "./events.ts";

const MAX_READ_BYTES = 256 * 1024;
const MAX_LIST_ENTRIES = 500;
const MAX_SEARCH_MATCHES = 200;
const MAX_COMMAND_OUTPUT = 24 * 1024;
const SKIPPED_DIRS = new Set([".git", "node_modules"]);

/** A tool failure the model should see and recover from, not a crash of the run. */
export class ToolError extends NightshiftError {
  constructor(message: string) {
    super("tool_error", message);
    this.name = "ToolError";
  }
}

/**
 * The file and shell operations of the built-in agent, confined to one workspace. Paths are
 * resolved against the workspace and refused when they lead outside it, through `..` or a
 * symlink. (The sandbox enforces the same wall for commands; this check gives the model a clear
 * answer instead of a permission error.)
 */
export class WorkspaceTools {
  constructor(
    private readonly root: string,
    private readonly emit: AgentEventSink,
    private readonly commandTimeoutMs: number,
    private readonly signal: AbortSignal,
    /** Where commands run; without one they run unsandboxed (tests of the tools themselves). */
    private readonly sandbox?: RunSandbox,
  ) {}

  async readFile(relative: string): Promise<string> {
    const file = await this.resolve(relative);
    const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new ToolError(
        error.code === "ENOENT"
          ? `no such file: ${relative}`
          : `cannot read ${relative}: ${error.code}`,
      );
    });
    return text.length > MAX_READ_BYTES
      ? `${text.slice(0, MAX_READ_BYTES)}\n… [file cut at ${MAX_READ_BYTES} bytes]`
      : text;
  }

  async writeFile(relative: string, content: string): Promise<string> {
    const file = await this.resolve(relative);
    const existed = await exists(file);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content, "utf8");
    this.emit({
      kind: "file_change",
      path: this.relative(file),
      change: existed ? "modified" : "created",
    });
    return `wrote ${content.length} characters to ${this.relative(file)}`;
  }

  async editFile(relative: string, oldString: string, newString: string): Promise<string> {
    const text = await this.readFile(relative);
    const at = text.indexOf(oldString);
    if (oldString === "" || at === -1) {
      throw new ToolError(`old_string not found in ${relative}; read the file and copy it exactly`);
    }
    if (text.indexOf(oldString, at + 1) !== -1) {
      throw new ToolError(`old_string occurs more than once in ${relative}; include more context`);
    }
    const file = await this.resolve(relative);
    await writeFile(
      file,
      text.slice(0, at) + newString + text.slice(at + oldString.length),
      "utf8",
    );
    this.emit({ kind: "file_change", path: this.relative(file), change: "modified" });
    return `edited ${this.relative(file)}`;
  }

  async listFiles(relative = "."): Promise<string> {
    const start = await this.resolve(relative);
    const found: string[] = [];
    await this.walk(start, found, MAX_LIST_ENTRIES);
    const suffix = found.length >= MAX_LIST_ENTRIES ? `\n… [stopped at ${MAX_LIST_ENTRIES}]` : "";
    return found.join("\n") + suffix;
  }

  async search(pattern: string, relative = "."): Promise<string> {
    let regex: RegExp;
    try {
      regex = new RegExp(pattern);
    } catch (error) {
      throw new ToolError(
        `invalid regular expression ${JSON.stringify(pattern)}: ${(error as Error).message}`,
      );
    }
    const files: string[] = [];
    await this.walk(await this.resolve(relative), files, 5_000);
    const matches: string[] = [];
    for (const file of files) {
      const text = await readFile(path.join(this.root, file), "utf8").catch(() => "");
      text.split("\n").forEach((line, index) => {
        if (matches.length < MAX_SEARCH_MATCHES && regex.test(line)) {
          matches.push(`${file}:${index + 1}: ${line.slice(0, 300)}`);
        }
      });
    }
    return matches.length > 0 ? matches.join("\n") : "no matches";
  }

  async runCommand(command: string): Promise<string> {
    const options = {
      command,
      timeoutMs: this.commandTimeoutMs,
      maxOutputBytes: MAX_COMMAND_OUTPUT,
      signal: this.signal,
      // The agent asks its model from the host; its commands have no business with the gateway.
      reachGateway: false,
    };
    const result = this.sandbox
      ? await this.sandbox.exec(options)
      : await runCommand({ ...options, cwd: this.root });
    // On a timeout the output already ends with the sandbox's note saying so.
    return result.timedOut ? result.output : `exit code ${result.exitCode}\n${result.output}`;
  }

  private async walk(dir: string, found: string[], limit: number): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => {
      throw new ToolError(`not a directory: ${this.relative(dir)}`);
    });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (found.length >= limit) return;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) await this.walk(full, found, limit);
      } else if (entry.isFile()) {
        found.push(this.relative(full));
      }
    }
  }

  private relative(file: string): string {
    return path.relative(this.root, file) || ".";
  }

  /** The absolute path for a workspace-relative one, refusing anything that escapes. */
  private async resolve(relative: string): Promise<string> {
    if (typeof relative !== "string" || relative.includes("\0")) {
      throw new ToolError("path must be a string without NUL characters");
    }
    const root = await realpath(this.root);
    const target = path.resolve(root, relative);
    // The nearest existing ancestor decides where a new file would really be written.
    let existing = target;
    while (!(await exists(existing))) existing = path.dirname(existing);
    const real = path.join(await realpath(existing), path.relative(existing, target));
    if (real !== root && !real.startsWith(root + path.sep)) {
      // An escape attempt through a file tool: refused before any I/O, and recorded like one.
      this.emit({
        kind: "sandbox_violation",
        violation: "path_outside_workspace",
        detail: `${relative} resolves to ${real}`,
      });
      throw new ToolError(`${relative} is outside the workspace; only paths inside it are allowed`);
    }
    if (path.relative(root, real).split(path.sep)[0] === ".git") {
      throw new ToolError("the .git folder is managed by nightshift and cannot be touched");
    }
    return real;
  }
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}
