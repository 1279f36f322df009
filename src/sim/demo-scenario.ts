import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/**
 * The demo repository "textkit": a small string-utility library with node:test tests, plus a backlog of
 * work orders whose correct and broken patches are known, so the demo and the tests can drive the whole
 * line without a real model.
 */

export interface DemoOrder {
  /** Unique and distinctive: the demo policy recognises an order by finding its title in the prompt. */
  title: string;
  /** Module name, used in the agent's closing message. */
  key: string;
  spec: string;
  acceptance: string;
  /** The correct patch: only new files, so concurrent orders never conflict. */
  files: Readonly<Record<string, string>>;
  /** The same tests with an implementation they catch as wrong. */
  brokenFiles: Readonly<Record<string, string>>;
}

/** Absolute path of nightshift's own tsx ESM loader, for demoPackageJson. */
export function resolveTsxLoader(): string {
  return createRequire(import.meta.url).resolve("tsx/esm");
}

/**
 * The demo repository's test command: every test file in one node process (scripts/run-tests.mjs)
 * with node:test's TAP reporter. `node --test` would start a node and the tsx loader per test file,
 * which made the test gates most of the demo's time; the tests and their report are the same.
 */
export function demoTestCommand(tsxLoaderPath: string): string {
  const loader = tsxLoaderPath.startsWith("file:")
    ? tsxLoaderPath
    : pathToFileURL(tsxLoaderPath).href;
  return `node --import ${loader} --test-reporter=tap scripts/run-tests.mjs`;
}

/** The demo repo's package.json; the test script loads tsx by absolute URL because the repo has no node_modules. */
export function demoPackageJson(tsxLoaderPath: string): string {
  const pkg = {
    name: "textkit",
    version: "0.1.0",
    private: true,
    type: "module",
    description: "Small string utilities (nightshift demo project).",
    scripts: { test: demoTestCommand(tsxLoaderPath) },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

function testFile(module: string, imports: string, body: string): string {
  return `import assert from "node:assert/strict";
import { test } from "node:test";
import { ${imports} } from "../src/${module}.ts";

${body.trim()}
`;
}

/** Files of the demo repository, without package.json (see demoProjectFiles). */
export const demoProject: Readonly<Record<string, string>> = {
  "README.md": `# textkit

Small, dependency-free string utilities for TypeScript.

This repository is the nightshift demo project: its backlog of work orders is implemented by
simulated agents. Run the tests with \`npm test\`.
`,
  ".gitignore": "node_modules/\n",
  "scripts/run-tests.mjs": `// Runs every test/*.test.ts in this one node process, in name order: node --test would start a
// process per file. Failures set the exit code; the report is node:test's (TAP with --test-reporter=tap).
import { readdirSync } from "node:fs";

const dir = new URL("../test/", import.meta.url);
for (const name of readdirSync(dir).filter((n) => n.endsWith(".test.ts")).sort()) {
  await import(new URL(name, dir).href);
}
`,
  "src/capitalize.ts": `/** Upper-cases the first character and leaves the rest unchanged. */
export function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
`,
  "src/words.ts": `/** Splits text into words on any run of whitespace. */
export function words(text: string): string[] {
  return text.split(/\\s+/).filter((word) => word.length > 0);
}
`,
  "test/capitalize.test.ts": testFile(
    "capitalize",
    "capitalize",
    `
test("capitalize upper-cases the first letter", () => {
  assert.equal(capitalize("hello"), "Hello");
  assert.equal(capitalize("hello World"), "Hello World");
});

test("capitalize leaves empty strings alone", () => {
  assert.equal(capitalize(""), "");
});
`,
  ),
  "test/words.test.ts": testFile(
    "words",
    "words",
    `
test("words splits on runs of whitespace", () => {
  assert.deepEqual(words("  one two\\tthree\\n four "), ["one", "two", "three", "four"]);
});

test("words of blank text is empty", () => {
  assert.deepEqual(words("   "), []);
});
`,
  ),
};

/** All files of the demo repository, package.json included. */
export function demoProjectFiles(tsxLoaderPath: string): Record<string, string> {
  return { ...demoProject, "package.json": demoPackageJson(tsxLoaderPath) };
}

interface OrderSource {
  title: string;
  key: string;
  module: string;
  spec: string;
  acceptance: string;
  impl: string;
  broken: string;
  test: string;
}

function order(source: OrderSource): DemoOrder {
  const srcPath = `src/${source.module}.ts`;
  const testPath = `test/${source.module}.test.ts`;
  const test = testFile(source.module, source.key, source.test);
  return {
    title: source.title,
    key: source.key,
    spec: source.spec,
    acceptance: source.acceptance,
    files: { [srcPath]: source.impl, [testPath]: test },
    brokenFiles: { [srcPath]: source.broken, [testPath]: test },
  };
}

const sources: OrderSource[] = [
  {
    title: "Add slugify(text)",
    key: "slugify",
    module: "slugify",
    spec: "Export slugify(text) from src/slugify.ts: lower-case the text, replace every run of characters other than a-z and 0-9 with a single hyphen, and strip leading and trailing hyphens.",
    acceptance: 'slugify("Hello, World!") === "hello-world"; tests in test/slugify.test.ts pass.',
    impl: `export function slugify(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}
`,
    broken: `export function slugify(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-");
}
`,
    test: `
test("slugify joins words with hyphens", () => {
  assert.equal(slugify("Hello, World!"), "hello-world");
  assert.equal(slugify("  Night   Shift 2030 "), "night-shift-2030");
});

test("slugify of punctuation only is empty", () => {
  assert.equal(slugify("!!!"), "");
});
`,
  },
  {
    title: "Add truncate(text, maxLength)",
    key: "truncate",
    module: "truncate",
    spec: "Export truncate(text, maxLength) from src/truncate.ts: return text unchanged if it has at most maxLength characters, otherwise cut it so that the result, ending in a single ellipsis character (…), is exactly maxLength characters long.",
    acceptance: 'truncate("abcdef", 4) === "abc…"; results never exceed maxLength; tests pass.',
    impl: `export function truncate(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text;
  return \`\${text.slice(0, Math.max(0, maxLength - 1))}…\`;
}
`,
    broken: `export function truncate(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text;
  return \`\${text.slice(0, maxLength)}…\`;
}
`,
    test: `
test("truncate keeps short text", () => {
  assert.equal(truncate("abc", 5), "abc");
  assert.equal(truncate("abcde", 5), "abcde");
});

test("truncate cuts long text to exactly maxLength", () => {
  assert.equal(truncate("abcdef", 4), "abc…");
  assert.equal(truncate("the quick brown fox", 10).length, 10);
});
`,
  },
  {
    title: "Add camelCase(text)",
    key: "camelCase",
    module: "camel-case",
    spec: "Export camelCase(text) from src/camel-case.ts: split on anything that is not a letter or digit, lower-case every word, then upper-case the first letter of every word except the first, and join.",
    acceptance: 'camelCase("hello world-foo") === "helloWorldFoo"; tests pass.',
    impl: `export function camelCase(text: string): string {
  const parts = text
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part.length > 0)
    .map((part) => part.toLowerCase());
  return parts
    .map((part, i) => (i === 0 ? part : part.charAt(0).toUpperCase() + part.slice(1)))
    .join("");
}
`,
    broken: `export function camelCase(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part.length > 0)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1).toLowerCase())
    .join("");
}
`,
    test: `
test("camelCase joins words", () => {
  assert.equal(camelCase("hello world-foo"), "helloWorldFoo");
  assert.equal(camelCase("  NIGHT_shift "), "nightShift");
});

test("camelCase of one word is lower case", () => {
  assert.equal(camelCase("Textkit"), "textkit");
});
`,
  },
  {
    title: "Add kebabCase(text)",
    key: "kebabCase",
    module: "kebab-case",
    spec: "Export kebabCase(text) from src/kebab-case.ts: split camelCase humps and anything that is not a letter or digit into words, lower-case them and join with hyphens.",
    acceptance: 'kebabCase("helloWorld Foo_bar") === "hello-world-foo-bar"; tests pass.',
    impl: `export function kebabCase(text: string): string {
  return text
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part.length > 0)
    .map((part) => part.toLowerCase())
    .join("-");
}
`,
    broken: `export function kebabCase(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part.length > 0)
    .map((part) => part.toLowerCase())
    .join("-");
}
`,
    test: `
test("kebabCase splits humps and separators", () => {
  assert.equal(kebabCase("helloWorld Foo_bar"), "hello-world-foo-bar");
  assert.equal(kebabCase("mergeQueue"), "merge-queue");
});

test("kebabCase of plain words", () => {
  assert.equal(kebabCase("Night Shift"), "night-shift");
});
`,
  },
  {
    title: "Add isPalindrome(text)",
    key: "isPalindrome",
    module: "is-palindrome",
    spec: "Export isPalindrome(text) from src/is-palindrome.ts: true if the letters and digits of text read the same backwards, ignoring case, spaces and punctuation.",
    acceptance: 'isPalindrome("A man, a plan, a canal: Panama") === true; tests pass.',
    impl: `export function isPalindrome(text: string): boolean {
  const chars = text.toLowerCase().replace(/[^a-z0-9]/g, "");
  return chars === [...chars].reverse().join("");
}
`,
    broken: `export function isPalindrome(text: string): boolean {
  const chars = text.replace(/[^A-Za-z0-9]/g, "");
  return chars === [...chars].reverse().join("");
}
`,
    test: `
test("isPalindrome ignores case and punctuation", () => {
  assert.equal(isPalindrome("A man, a plan, a canal: Panama"), true);
  assert.equal(isPalindrome("Racecar"), true);
});

test("isPalindrome rejects non-palindromes", () => {
  assert.equal(isPalindrome("nightshift"), false);
});
`,
  },
  {
    title: "Add countVowels(text)",
    key: "countVowels",
    module: "count-vowels",
    spec: "Export countVowels(text) from src/count-vowels.ts: the number of the vowels a, e, i, o, u in text, upper or lower case.",
    acceptance: 'countVowels("HELLO world") === 3; tests pass.',
    impl: `export function countVowels(text: string): number {
  return (text.match(/[aeiou]/gi) ?? []).length;
}
`,
    broken: `export function countVowels(text: string): number {
  return (text.match(/[aeiou]/g) ?? []).length;
}
`,
    test: `
test("countVowels counts both cases", () => {
  assert.equal(countVowels("HELLO world"), 3);
  assert.equal(countVowels("AEIOU aeiou"), 10);
});

test("countVowels of consonants is zero", () => {
  assert.equal(countVowels("rhythm"), 0);
});
`,
  },
  {
    title: "Add titleCase(text)",
    key: "titleCase",
    module: "title-case",
    spec: "Export titleCase(text) from src/title-case.ts: split on whitespace, capitalise each word and lower-case the rest of it, except the small words a, an, and, in, of, on, or, the, which stay lower case unless they come first; join with single spaces.",
    acceptance: 'titleCase("the lord of the rings") === "The Lord of the Rings"; tests pass.',
    impl: `const SMALL = new Set(["a", "an", "and", "in", "of", "on", "or", "the"]);

export function titleCase(text: string): string {
  return text
    .split(/\\s+/)
    .filter((word) => word.length > 0)
    .map((word, i) => {
      const lower = word.toLowerCase();
      if (i > 0 && SMALL.has(lower)) return lower;
      return lower.charAt(0).toUpperCase() + lower.slice(1);
    })
    .join(" ");
}
`,
    broken: `export function titleCase(text: string): string {
  return text
    .split(/\\s+/)
    .filter((word) => word.length > 0)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase())
    .join(" ");
}
`,
    test: `
test("titleCase keeps small words lower case", () => {
  assert.equal(titleCase("the lord of the rings"), "The Lord of the Rings");
  assert.equal(titleCase("WAR AND PEACE"), "War and Peace");
});

test("titleCase capitalises a leading small word", () => {
  assert.equal(titleCase("a tale"), "A Tale");
});
`,
  },
  {
    title: "Add reverseWords(text)",
    key: "reverseWords",
    module: "reverse-words",
    spec: "Export reverseWords(text) from src/reverse-words.ts: the words of text (split on runs of whitespace) in reverse order, joined by single spaces, with no leading or trailing space.",
    acceptance: 'reverseWords("  hello   big world ") === "world big hello"; tests pass.',
    impl: `export function reverseWords(text: string): string {
  return text
    .split(/\\s+/)
    .filter((word) => word.length > 0)
    .reverse()
    .join(" ");
}
`,
    broken: `export function reverseWords(text: string): string {
  return text.split(" ").reverse().join(" ");
}
`,
    test: `
test("reverseWords reverses word order", () => {
  assert.equal(reverseWords("one two three"), "three two one");
});

test("reverseWords collapses extra whitespace", () => {
  assert.equal(reverseWords("  hello   big world "), "world big hello");
});
`,
  },
  {
    title: "Add padCenter(text, width, fill)",
    key: "padCenter",
    module: "pad-center",
    spec: 'Export padCenter(text, width, fill = " ") from src/pad-center.ts: pad text on both sides with the single character fill up to width characters; when the padding is odd the extra character goes on the right. Text already at least width long is returned unchanged.',
    acceptance: 'padCenter("ab", 5, "*") === "*ab**"; tests pass.',
    impl: `export function padCenter(text: string, width: number, fill = " "): string {
  const total = Math.max(0, width - text.length);
  const left = Math.floor(total / 2);
  return fill.repeat(left) + text + fill.repeat(total - left);
}
`,
    broken: `export function padCenter(text: string, width: number, fill = " "): string {
  const total = Math.max(0, width - text.length);
  const left = Math.ceil(total / 2);
  return fill.repeat(left) + text + fill.repeat(total - left);
}
`,
    test: `
test("padCenter puts the odd character on the right", () => {
  assert.equal(padCenter("ab", 5, "*"), "*ab**");
  assert.equal(padCenter("x", 4, "-"), "-x--");
});

test("padCenter pads evenly and defaults to spaces", () => {
  assert.equal(padCenter("ab", 6), "  ab  ");
  assert.equal(padCenter("abcdef", 3), "abcdef");
});
`,
  },
  {
    title: "Add countOccurrences(text, needle)",
    key: "countOccurrences",
    module: "count-occurrences",
    spec: "Export countOccurrences(text, needle) from src/count-occurrences.ts: the number of non-overlapping occurrences of needle in text, scanning left to right; an empty needle occurs 0 times.",
    acceptance: 'countOccurrences("aaaa", "aa") === 2; tests pass.',
    impl: `export function countOccurrences(text: string, needle: string): number {
  if (needle.length === 0) return 0;
  let count = 0;
  let at = text.indexOf(needle);
  while (at !== -1) {
    count += 1;
    at = text.indexOf(needle, at + needle.length);
  }
  return count;
}
`,
    broken: `export function countOccurrences(text: string, needle: string): number {
  if (needle.length === 0) return 0;
  let count = 0;
  let at = text.indexOf(needle);
  while (at !== -1) {
    count += 1;
    at = text.indexOf(needle, at + 1);
  }
  return count;
}
`,
    test: `
test("countOccurrences does not count overlaps", () => {
  assert.equal(countOccurrences("aaaa", "aa"), 2);
  assert.equal(countOccurrences("banana", "ana"), 1);
});

test("countOccurrences of an empty needle is zero", () => {
  assert.equal(countOccurrences("abc", ""), 0);
  assert.equal(countOccurrences("abc", "z"), 0);
});
`,
  },
  {
    title: "Add initials(name)",
    key: "initials",
    module: "initials",
    spec: "Export initials(name) from src/initials.ts: the upper-cased first letter of every whitespace-separated word of name, joined without separators.",
    acceptance: 'initials("ada lovelace") === "AL"; tests pass.',
    impl: `import { words } from "./words.ts";

export function initials(name: string): string {
  return words(name)
    .map((word) => word.charAt(0).toUpperCase())
    .join("");
}
`,
    broken: `import { words } from "./words.ts";

export function initials(name: string): string {
  return words(name)
    .map((word) => word.charAt(0))
    .join("");
}
`,
    test: `
test("initials upper-cases first letters", () => {
  assert.equal(initials("ada lovelace"), "AL");
  assert.equal(initials("  grace   brewster hopper "), "GBH");
});

test("initials of blank text is empty", () => {
  assert.equal(initials(" "), "");
});
`,
  },
  {
    title: "Add collapseWhitespace(text)",
    key: "collapseWhitespace",
    module: "collapse-whitespace",
    spec: "Export collapseWhitespace(text) from src/collapse-whitespace.ts: replace every run of whitespace with a single space and trim both ends.",
    acceptance: 'collapseWhitespace("  a \\t b\\n\\nc  ") === "a b c"; tests pass.',
    impl: `export function collapseWhitespace(text: string): string {
  return text.replace(/\\s+/g, " ").trim();
}
`,
    broken: `export function collapseWhitespace(text: string): string {
  return text.replace(/\\s+/g, " ");
}
`,
    test: `
test("collapseWhitespace collapses and trims", () => {
  assert.equal(collapseWhitespace("  a \\t b\\n\\nc  "), "a b c");
});

test("collapseWhitespace leaves tidy text alone", () => {
  assert.equal(collapseWhitespace("tidy text"), "tidy text");
});
`,
  },
];

/** The demo backlog: at least ten independent orders, each adding one module and its tests. */
export const demoOrders: readonly DemoOrder[] = sources.map(order);
