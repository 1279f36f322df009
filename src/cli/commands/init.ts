import { execFile } from "node:child_process";
import { access, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { promisify } from "node:util";
import {
  CONFIG_FILE,
  configTemplate,
  KIND_DEFAULTS,
  PROVIDER_KINDS,
  type ProviderKind,
} from "../../config/index.ts";
import { NightshiftError } from "../../errors/index.ts";

const run = promisify(execFile);

export interface InitOptions {
  force?: boolean;
  print?: boolean;
  test?: string;
  branch?: string;
  /** Provider kinds, comma-separated; default: those whose keys are in the environment. */
  provider?: string;
  /** For openai-compatible: the server's base URL. */
  baseUrl?: string;
}

type RealKind = Exclude<ProviderKind, "simulator">;
const KEYED_KINDS: RealKind[] = ["anthropic", "openai", "google"];

export async function initCommand(
  root: string,
  options: InitOptions,
  io: { env?: NodeJS.ProcessEnv; ask?: (question: string) => Promise<string> } = {},
): Promise<string> {
  const env = io.env ?? process.env;
  const choice = await chooseProviders(options, env, io.ask ?? askOnTerminal());
  const text = configTemplate({
    name: path.basename(path.resolve(root)),
    branch: options.branch ?? (await currentBranch(root)),
    test: options.test ?? (await guessTestCommand(root)),
    providers:
      choice.kinds[0] === "simulator"
        ? { simulator: "stand-in" }
        : {
            kinds: choice.kinds as RealKind[],
            ...(options.baseUrl ? { baseURL: options.baseUrl } : {}),
          },
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
  return [
    `wrote ${file}`,
    choice.note,
    'next: nightshift doctor && nightshift add "a work order" --spec "..." && nightshift run',
  ]
    .filter(Boolean)
    .join("\n");
}

/**
 * Which providers the new file configures: the ones named, else those whose keys are set, else
 * the user's answer on a terminal, else none (and `run` refuses until one is added): never the
 * simulator unless asked for by name.
 */
async function chooseProviders(
  options: InitOptions,
  env: NodeJS.ProcessEnv,
  ask: ((question: string) => Promise<string>) | undefined,
): Promise<{ kinds: ProviderKind[]; note: string }> {
  if (options.provider) {
    const kinds = parseKinds(options.provider);
    if (kinds.includes("openai-compatible") && !options.baseUrl) {
      throw new NightshiftError(
        "init_base_url_missing",
        "--provider openai-compatible needs the server's URL",
        {
          hint: "add --base-url, e.g. --base-url http://127.0.0.1:11434/v1 (Ollama) or https://openrouter.ai/api/v1",
        },
      );
    }
    return { kinds, note: "" };
  }
  const found = KEYED_KINDS.filter((kind) => env[KIND_DEFAULTS[kind].apiKeyEnv ?? ""]);
  if (found.length > 0) {
    const names = found.map((kind) => `${kind} (${KIND_DEFAULTS[kind].apiKeyEnv} is set)`);
    return { kinds: found, note: `providers: ${names.join(", ")}` };
  }
  const keys = KEYED_KINDS.map((kind) => KIND_DEFAULTS[kind].apiKeyEnv).join(", ");
  if (ask) {
    const answer = await ask(
      `No model provider key found in the environment (${keys}).\nWhich provider will you use? [${PROVIDER_KINDS.join("/")}] `,
    );
    if (answer.trim() !== "") return { kinds: parseKinds(answer.trim()), note: "" };
  }
  return {
    kinds: [],
    note: `NOTE: no model provider is configured (none of ${keys} is set). Uncomment one in [providers] before \`nightshift run\`, or run \`nightshift init --force --provider anthropic\`.`,
  };
}

function parseKinds(text: string): ProviderKind[] {
  const kinds = text
    .split(",")
    .map((kind) => kind.trim())
    .filter(Boolean);
  for (const kind of kinds) {
    if (!(PROVIDER_KINDS as readonly string[]).includes(kind)) {
      throw new NightshiftError("init_provider_unknown", `unknown provider kind "${kind}"`, {
        hint: `use one or more of ${PROVIDER_KINDS.join(", ")}, comma-separated`,
      });
    }
  }
  if (kinds.includes("simulator") && kinds.length > 1) {
    throw new NightshiftError(
      "init_provider_unknown",
      "the simulator cannot be combined with real providers in init",
      {
        hint: "pick --provider simulator alone, or real providers only",
      },
    );
  }
  return kinds as ProviderKind[];
}

/** A question on the terminal, only when there is a person at one. */
function askOnTerminal(): ((question: string) => Promise<string>) | undefined {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return undefined;
  return async (question) => {
    const terminal = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return await terminal.question(question);
    } finally {
      terminal.close();
    }
  };
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
