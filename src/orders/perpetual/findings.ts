import path from "node:path";
import type { FindingFormat } from "../../config/index.ts";
import { PerpetualSourceError } from "./errors.ts";

/** One complaint of a lint or type-check command about one place in one file. */
export interface Finding {
  /** As the command wrote it; made relative to the checkout by `relativeTo`. */
  file: string;
  line?: number;
  column?: number;
  /** The complaint, with its rule or code when the tool gives one ("TS2322: Type ..."). */
  message: string;
}

// src/a.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.
const TSC = /^(.+?)\((\d+),(\d+)\): (?:error|warning) (TS\d+: .+)$/;
// ::error title=lint/x,file=src/a.ts,line=3,endLine=3,col=7,endColumn=9::message
const GITHUB = /^::(?:error|warning|notice)\s+([^:]*)::(.*)$/;
// /abs/src/a.js: line 3, col 7, Error - Unexpected console statement. (no-console)
const ESLINT_COMPACT = /^(.+?): line (\d+), col (\d+), (?:Error|Warning) - (.+)$/;
// src/a.js:3:7: message — gcc, eslint's unix, biome's concise ("× " first), ruff, mypy (no column).
const GENERIC = /^(?:[!×✖⚠ℹ]\s+)?([^\s:][^:]*?):(\d+)(?::(\d+))?:?\s+(.+)$/;

/**
 * The findings in a command's output, read in `format`. "auto" reads JSON (eslint's or biome's)
 * when the output is JSON, else each line in the first line format it fits. Lines that fit no
 * format (summaries, code frames) are skipped; the caller keeps only files it knows.
 */
export function parseFindings(output: string, format: FindingFormat): Finding[] {
  const text = output.trim();
  switch (format) {
    case "eslint-json":
      return eslintJson(readJson(text, format));
    case "biome-json":
      return biomeJson(readJson(text, format));
    case "auto":
      if (text.startsWith("[") || text.startsWith("{")) {
        const json = readJson(text, format);
        return Array.isArray(json) ? eslintJson(json) : biomeJson(json);
      }
      return byLine(
        text,
        (line) => tscLine(line) ?? githubLine(line) ?? compactLine(line) ?? genericLine(line),
      );
    case "tsc":
      return byLine(text, tscLine);
    case "github":
      return byLine(text, githubLine);
    case "eslint-compact":
      return byLine(text, compactLine);
    case "generic":
      return byLine(text, genericLine);
  }
}

/** The findings whose file is one of `known` (paths relative to `root`), with relative paths. */
export function keepKnownFiles(findings: Finding[], root: string, known: Set<string>): Finding[] {
  return findings.flatMap((f) => {
    const file = path.relative(root, path.resolve(root, f.file)).split(path.sep).join("/");
    return known.has(file) ? [{ ...f, file }] : [];
  });
}

function byLine(text: string, parse: (line: string) => Finding | undefined): Finding[] {
  return text.split(/\r?\n/).flatMap((line) => {
    const found = parse(line.trimEnd());
    return found ? [found] : [];
  });
}

function tscLine(line: string): Finding | undefined {
  const m = TSC.exec(line);
  if (!m) return undefined;
  return { file: m[1] ?? "", line: Number(m[2]), column: Number(m[3]), message: m[4] ?? "" };
}

function githubLine(line: string): Finding | undefined {
  const m = GITHUB.exec(line);
  if (!m) return undefined;
  const props = new Map(
    (m[1] ?? "").split(",").map((pair) => {
      const at = pair.indexOf("=");
      return [pair.slice(0, at).trim(), pair.slice(at + 1)] as const;
    }),
  );
  const file = props.get("file");
  if (!file) return undefined;
  const title = props.get("title");
  return {
    file,
    ...optionalNumber("line", props.get("line")),
    ...optionalNumber("column", props.get("col")),
    message: title ? `${title}: ${m[2]}` : (m[2] ?? ""),
  };
}

function compactLine(line: string): Finding | undefined {
  const m = ESLINT_COMPACT.exec(line);
  if (!m) return undefined;
  return { file: m[1] ?? "", line: Number(m[2]), column: Number(m[3]), message: m[4] ?? "" };
}

function genericLine(line: string): Finding | undefined {
  const m = GENERIC.exec(line);
  if (!m) return undefined;
  return {
    file: m[1] ?? "",
    line: Number(m[2]),
    ...optionalNumber("column", m[3]),
    message: m[4] ?? "",
  };
}

function optionalNumber(key: "line" | "column", value: string | undefined) {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) ? { [key]: n } : {};
}

function readJson(text: string, format: FindingFormat): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PerpetualSourceError(
      "source_output_unreadable",
      `the output is not the JSON format "${format}" expects (${(error as Error).message}); it began: ${text.slice(0, 200)}`,
      "check that the command writes only its JSON report to stdout (e.g. eslint -f json, biome --reporter=json), or set its format to match what it writes",
    );
  }
}

interface EslintResult {
  filePath?: unknown;
  messages?: { line?: unknown; column?: unknown; message?: unknown; ruleId?: unknown }[];
}

/** eslint -f json: [{ filePath, messages: [{ line, column, message, ruleId }] }]. */
function eslintJson(json: unknown): Finding[] {
  if (!Array.isArray(json)) throw notShaped("eslint-json", "an array of file results");
  return (json as EslintResult[]).flatMap((result) => {
    if (typeof result?.filePath !== "string" || !Array.isArray(result.messages)) return [];
    const file = result.filePath;
    return result.messages.map((m) => ({
      file,
      ...optionalNumber("line", m.line === undefined ? undefined : String(m.line)),
      ...optionalNumber("column", m.column === undefined ? undefined : String(m.column)),
      message: `${typeof m.ruleId === "string" ? `${m.ruleId}: ` : ""}${String(m.message ?? "")}`,
    }));
  });
}

interface BiomeDiagnostic {
  message?: unknown;
  description?: unknown;
  category?: unknown;
  location?: { path?: unknown; start?: { line?: unknown; column?: unknown } };
}

/** biome --reporter=json: { diagnostics: [{ category, message, location: { path, start } }] }. */
function biomeJson(json: unknown): Finding[] {
  const diagnostics = (json as { diagnostics?: unknown } | null)?.diagnostics;
  if (!Array.isArray(diagnostics)) throw notShaped("biome-json", 'an object with "diagnostics"');
  return (diagnostics as BiomeDiagnostic[]).flatMap((d) => {
    const where = d?.location?.path;
    // Older biome versions wrote { path: { file } }.
    const file = typeof where === "string" ? where : (where as { file?: unknown })?.file;
    if (typeof file !== "string") return [];
    const start = d.location?.start;
    const text = String(d.message ?? d.description ?? "");
    return [
      {
        file,
        ...optionalNumber("line", start?.line === undefined ? undefined : String(start.line)),
        ...optionalNumber("column", start?.column === undefined ? undefined : String(start.column)),
        message: typeof d.category === "string" ? `${d.category}: ${text}` : text,
      },
    ];
  });
}

function notShaped(format: string, expected: string): PerpetualSourceError {
  return new PerpetualSourceError(
    "source_output_unreadable",
    `the output is JSON, but not what "${format}" writes (expected ${expected})`,
    "set the command's format to the tool that writes its output",
  );
}
