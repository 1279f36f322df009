import { git } from "../workspace/git.ts";

const MAX_FILES = 300;
const README_CHARS = 3000;

/**
 * What a planner needs to know of a repository to name real paths: its committed files at `ref`
 * (the first few hundred) and the start of its README.
 */
export async function repositorySketch(repoPath: string, ref: string): Promise<string> {
  const listed = await git(["ls-tree", "-r", "--name-only", ref], {
    cwd: repoPath,
    okCodes: [128],
  });
  const files = listed.exitCode === 0 ? listed.stdout.split("\n").filter(Boolean) : [];
  const lines = [
    files.length === 0
      ? "(no committed files)"
      : `files (${files.length}): ${files.slice(0, MAX_FILES).join(", ")}${files.length > MAX_FILES ? ", ..." : ""}`,
  ];
  const readme = files.find((f) => /^readme(\.md|\.txt)?$/i.test(f));
  if (readme) {
    const text = (await git(["show", `${ref}:${readme}`], { cwd: repoPath })).stdout;
    lines.push(
      `${readme}:`,
      text.length > README_CHARS ? `${text.slice(0, README_CHARS)}\n[...]` : text,
    );
  }
  return lines.join("\n");
}
