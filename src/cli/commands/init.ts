import { execFile } from "node:child_process";
import { access, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { CONFIG_FILE, configTemplate } from "../../config/index.ts";
import { NightshiftError } from "../../errors/index.ts";

const run = promisify(execFile);

export async function initCommand(
  root: string,
  options: { force?: boolean; print?: boolean; test?: string; branch?: string },
): Promise<string> {
  const text = configTemplate({
    name: path.basename(path.resolve(root)),
    branch: options.branch ?? (await currentBranch(root)),
    test: options.test ?? (await guessTestCommand(root)),
  });
  if (options.print) return text;
  await assertGitRepository(root);
  const file = path.join(root, CONFIG_FILE);
  if (!options.force && (await exists(file))) {
    throw new NightshiftError("init_exists", `${file} already exists`, {
      hint: "edit it, or run `nightshift init --force` to overwrite it with the defaults",
    });
  }
  await writeFile(file, text);
  return `wrote ${file}\nnext: nightshift add "a work order" --spec "..." && nightshift run`;
}

async function assertGitRepository(root: string): Promise<void> {
  try {
    await run("git", ["rev-parse", "--git-dir"], { cwd: root });
  } catch {
    throw new NightshiftError("not_a_repository", `${path.resolve(root)} is not a git repository`, {
      hint: "run nightshift in a git repository (git init && git commit) or pass --dir",
    });
  }
}

async function currentBranch(root: string): Promise<string> {
  try {
    const { stdout } = await run("git", ["symbolic-ref", "--short", "HEAD"], { cwd: root });
    return stdout.trim() || "main";
  } catch {
    return "main";
  }
}

async function guessTestCommand(root: string): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8"));
    if (pkg?.scripts?.test) return "npm test";
  } catch {
    // not a node project
  }
  if (await exists(path.join(root, "Makefile"))) return "make test";
  if (await exists(path.join(root, "Cargo.toml"))) return "cargo test";
  if (await exists(path.join(root, "pyproject.toml"))) return "pytest";
  return "npm test";
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
