/** One hunk of a unified diff, with the file it changes and the new file's line range. */
export interface DiffHunk {
  file: string;
  start: number;
  end: number;
  text: string;
}

const FILE = /^\+\+\+ (?:b\/)?(.*)$/;
const HUNK = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@/;

export function parseDiff(diff: string): DiffHunk[] {
  const hunks: DiffHunk[] = [];
  let file = "";
  let current: { file: string; start: number; end: number; lines: string[] } | undefined;
  const close = () => {
    if (current) hunks.push({ ...current, text: current.lines.join("\n") });
    current = undefined;
  };
  for (const line of diff.split("\n")) {
    if (line.startsWith("diff --git")) {
      close();
      continue;
    }
    const name = FILE.exec(line);
    if (name) {
      file = name[1] ?? "";
      continue;
    }
    const hunk = HUNK.exec(line);
    if (hunk) {
      close();
      const start = Number(hunk[1]);
      const count = hunk[2] === undefined ? 1 : Number(hunk[2]);
      current = {
        file,
        start,
        end: start + Math.max(count, 1) - 1,
        lines: [`@@ ${file}:${start} @@`],
      };
      continue;
    }
    if (current && /^[ +\-\\]/.test(line)) current.lines.push(line);
  }
  close();
  return hunks;
}

/**
 * The hunks a failure points at, most relevant first: those whose lines a failure mentions
 * (`src/sum.ts:12`), then other hunks of files it mentions, then the rest of the change; test files
 * last, since the failure is usually in the code they test. Cut to `budget` characters.
 */
export function relevantHunks(diff: string, failureText: string, budget: number): string {
  const hunks = parseDiff(diff);
  const words = new Set(failureText.match(/[A-Za-z_$][\w$]{2,}/g) ?? []);
  const score = (h: DiffHunk) => {
    let s = 0;
    const mentions = [...failureText.matchAll(new RegExp(`${escapeRegExp(h.file)}:(\\d+)`, "g"))];
    if (mentions.some((m) => Number(m[1]) >= h.start - 3 && Number(m[1]) <= h.end + 3)) s += 4;
    if (failureText.includes(h.file)) s += 2;
    if (!/(^|\/)(test|tests|__tests__)\/|\.(test|spec)\.[a-z]+$/.test(h.file)) s += 3;
    if (changedNames(h).some((name) => words.has(name))) s += 1;
    return s;
  };
  const ranked = hunks
    .map((h, i) => ({ h, i, s: score(h) }))
    .sort((a, b) => b.s - a.s || a.i - b.i);
  const picked: string[] = [];
  let used = 0;
  for (const { h } of ranked) {
    const text =
      h.text.length > budget
        ? `${h.text.slice(0, Math.max(0, budget - used - 20))}\n[... hunk cut ...]`
        : h.text;
    if (used + text.length + 1 > budget) continue;
    picked.push(text);
    used += text.length + 1;
  }
  const left = hunks.length - picked.length;
  return (
    picked.join("\n") +
    (left > 0 && picked.length > 0
      ? `\n[... ${left} more hunk(s) of your change left out ...]`
      : "")
  );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const KEYWORDS = new Set([
  "return",
  "const",
  "let",
  "var",
  "function",
  "export",
  "import",
  "from",
  "async",
  "await",
  "new",
  "this",
  "true",
  "false",
  "null",
  "undefined",
]);

/** Names in a hunk's lines (not its header): a failure naming one is likely about that hunk. */
function changedNames(hunk: DiffHunk): string[] {
  return hunk.text
    .split("\n")
    .slice(1)
    .flatMap((l) => l.match(/[A-Za-z_$][\w$]{2,}/g) ?? [])
    .filter((name) => !KEYWORDS.has(name));
}
