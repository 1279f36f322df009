import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { SandboxViolation, SandboxViolationKind } from "./types.ts";

/**
 * Errors a command prints when a wall of the sandbox stopped it. Inside the sandbox these have
 * (almost) no innocent cause: the toolchain is read-only, the host's home and the secret places are
 * mode 000, only the gateway's port is open, and processes outside are invisible. The patterns are
 * the messages of the usual tools (coreutils, bash, git, node, curl, python).
 */
const SIGNATURES: { kind: SandboxViolationKind; pattern: RegExp }[] = [
  { kind: "write_denied", pattern: /Read-only file system|\bEROFS\b/ },
  {
    kind: "access_denied",
    pattern: /permission denied|operation not permitted|must be superuser|\bEACCES\b|\bEPERM\b/i,
  },
  {
    kind: "network_blocked",
    pattern:
      /Connection refused|\bECONNREFUSED\b|Network is unreachable|\bENETUNREACH\b|Could not resolve host|Temporary failure in name resolution|\bEAI_AGAIN\b|\bENOTFOUND\b/,
  },
  { kind: "kill_blocked", pattern: /kill: \(?-?\d+\)? ?-? ?No such process|\bESRCH\b/ },
  { kind: "process_limit", pattern: /fork: (retry: )?Resource temporarily unavailable/ },
  { kind: "disk_limit", pattern: /File size limit exceeded|No space left on device|\bENOSPC\b/ },
  { kind: "cpu_limit", pattern: /CPU time limit exceeded/ },
];

/** Lines that would otherwise match but are the sandbox's own notes. */
const OWN_NOTE = /^\[nightshift( sandbox)?:/;

const MAX_PER_COMMAND = 20;

/** The blocked attempts a command's output shows, one per offending line (at most 20). */
export function violationsInOutput(output: string, command: string): SandboxViolation[] {
  const found: SandboxViolation[] = [];
  for (const line of output.split("\n")) {
    if (found.length >= MAX_PER_COMMAND) break;
    if (OWN_NOTE.test(line)) continue;
    const match = SIGNATURES.find((s) => s.pattern.test(line));
    if (match) found.push({ kind: match.kind, detail: excerpt(line, match.pattern), command });
  }
  return found;
}

/**
 * The evidence from one line: the line itself, or for a long one (an agent CLI's JSON event that
 * carries a whole tool output) the part around the message.
 */
function excerpt(line: string, pattern: RegExp): string {
  const text = line.trim();
  if (text.length <= 500) return text;
  const at = pattern.exec(text)?.index ?? 0;
  const start = Math.max(0, at - 200);
  return `${start > 0 ? "…" : ""}${text.slice(start, start + 500)}…`;
}

/** Longest partial line kept while waiting for its end; beyond it, what is there is scanned. */
const MAX_PENDING_LINE = 64 * 1024;

/**
 * violationsInOutput over a stream, line by line as the chunks arrive: a long-lived program (an
 * agent CLI) prints far more than the capped capture keeps, and an attempt in the middle of its
 * output must still be seen. One scanner per stream (stdout and stderr split lines differently).
 */
export class OutputScanner {
  readonly found: SandboxViolation[] = [];
  private pending = "";
  private readonly decoder = new StringDecoder("utf8");

  constructor(private readonly command: string) {}

  write(chunk: Buffer): void {
    if (this.found.length >= MAX_PER_COMMAND) return;
    const text = this.pending + this.decoder.write(chunk);
    const cut = text.lastIndexOf("\n");
    if (cut < 0) {
      this.pending = text;
    } else {
      this.scan(text.slice(0, cut));
      this.pending = text.slice(cut + 1);
    }
    if (this.pending.length > MAX_PENDING_LINE) {
      this.scan(this.pending);
      this.pending = "";
    }
  }

  end(): SandboxViolation[] {
    this.scan(this.pending + this.decoder.end());
    this.pending = "";
    return this.found;
  }

  private scan(text: string): void {
    if (!text || this.found.length >= MAX_PER_COMMAND) return;
    const more = violationsInOutput(text, this.command);
    this.found.push(...more.slice(0, MAX_PER_COMMAND - this.found.length));
  }
}

/** One attempt is one violation: a fork bomb's thousand "fork: retry" lines are one process_limit. */
export function onePerKind(violations: SandboxViolation[]): SandboxViolation[] {
  const seen = new Set<string>();
  return violations.filter((v) => !seen.has(v.kind) && seen.add(v.kind));
}

/** Where secrets live: reaching for these is an attempt even when the sandbox shows nothing there. */
const SECRET_PATTERNS: { pattern: RegExp; what: string }[] = [
  { pattern: /\/proc\/[^\s/]+\/environ/, what: "a process's environment in /proc" },
  {
    pattern: /(^|[\s~/])\.(ssh|aws|gnupg|netrc|docker|kube|azure)\b/,
    what: "a credentials folder",
  },
  { pattern: /\bid_(rsa|ed25519|ecdsa|dsa)\b/, what: "a private key" },
  { pattern: /\/etc\/(shadow|gshadow|sudoers)\b/, what: "the host's password files" },
  {
    pattern: /\$\{?(?!NIGHTSHIFT_)[A-Z0-9_]*(API_KEY|SECRET|TOKEN|PASSWORD)[A-Z0-9_]*\b/,
    what: "a secret environment variable",
  },
  { pattern: /\b(printenv|env)\s*(\||$|;|>)/, what: "the whole environment" },
];

/**
 * Attempts a command's text shows even when the sandbox makes them come to nothing: it names a
 * secret's usual place, or a path outside its workspace that the sandbox hides (other runs, the
 * ledger, the main checkout, the gates' hidden files: everything under `guarded` but the
 * workspace and the read-only .git). Reading those finds nothing inside; the try is recorded.
 */
export function probesInCommand(
  command: string,
  where: { cwd: string; workspace: string; guarded: string[]; readable: string[] },
): SandboxViolation[] {
  const found: SandboxViolation[] = [];
  for (const { pattern, what } of SECRET_PATTERNS) {
    if (pattern.test(command)) {
      found.push({ kind: "access_denied", detail: `the command reaches for ${what}`, command });
    }
  }
  const inside = (p: string, dir: string) => p === dir || p.startsWith(dir + path.sep);
  for (const token of command.match(/(?:\.\.\/|\/)[^\s'";|&<>()`$]*/g) ?? []) {
    const target = path.resolve(where.cwd, token);
    if (inside(target, where.workspace) || where.readable.some((dir) => inside(target, dir)))
      continue;
    if (where.guarded.some((dir) => inside(target, dir))) {
      found.push({
        kind: "path_outside_workspace",
        detail: `the command names ${target}, outside the workspace`,
        command,
      });
      break;
    }
  }
  return found;
}
