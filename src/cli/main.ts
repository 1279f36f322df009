import path from "node:path";
import v8 from "node:v8";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { describeError, isNightshiftError } from "../errors/index.ts";
// Straight to the two small files instead of sim/index.ts: the option definitions need these
// constants, and sim/index.ts would load the simulator's server, protocols and SDKs into every
// call, `--help` included. Every command's module is imported by its action, for the same reason.
import { demoOrders } from "../sim/demo-scenario.ts";
import { FAULT_KINDS, type FaultKind } from "../sim/faults.ts";

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function integer(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError("must be a number from 0 to 1, e.g. 0.2.");
  }
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError("must be a positive number, e.g. 685 or 0.5.");
  }
  return n;
}

/** `--fault rate_limit=0.05`, repeatable, into a map of fault rates. */
export function collectFault(value: string, previous: Partial<Record<FaultKind, number>>) {
  const [kind, rate] = value.split("=");
  if (!kind || !(FAULT_KINDS as readonly string[]).includes(kind)) {
    throw new InvalidArgumentError(
      `unknown fault "${kind}"; one of ${FAULT_KINDS.join(", ")} (e.g. rate_limit=0.05).`,
    );
  }
  const n = Number(rate);
  if (rate === undefined || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError(`"${value}" needs a rate from 0 to 1, e.g. ${kind}=0.05.`);
  }
  return { ...previous, [kind]: n };
}

/**
 * For the commands that open the ledger and exit: PGlite's WebAssembly then runs on V8's baseline
 * compiler only, which halves the CPU time of a call (the optimising compiler's work would only pay
 * off in a process that lives for minutes, like those named in LONG_LIVED).
 */
function shortLived(): void {
  v8.setFlagsFromString("--liftoff-only");
}

const LONG_LIVED = new Set(["run", "watch", "console", "worker", "gateway", "sim", "demo"]);

export function buildProgram(): Command {
  const program = new Command("nightshift")
    .description("A software factory: coding agents on a perpetual loop; main is never red.")
    .option("-C, --dir <path>", "the repository to work on", ".")
    .showHelpAfterError()
    // Usage errors (bad option values, unknown options) throw instead of exiting with 1, so that
    // main() gives them the same exit code 2 as every other kind of bad input.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) })
    .hook("preAction", (_program, action) => {
      if (!LONG_LIVED.has(action.name())) shortLived();
    });
  const dir = () => path.resolve(program.opts<{ dir: string }>().dir);

  program
    .command("init")
    .description("write a commented nightshift.toml in the repository")
    .option("--force", "overwrite an existing nightshift.toml")
    .option("--print", "print the file instead of writing it")
    .option("--test <command>", "the test command the gate runs")
    .option("--branch <name>", "the branch changes land on")
    .option(
      "--provider <kinds>",
      "model providers, comma-separated: anthropic, openai, google, openai-compatible, simulator (default: those whose keys are set)",
    )
    .option("--base-url <url>", "the server's URL, for --provider openai-compatible")
    .action(async (options) => {
      const { initCommand } = await import("./commands/init.ts");
      print(await initCommand(dir(), options));
    });

  program
    .command("add")
    .description("queue a work order (or every order of a backlog file)")
    .argument("[title]", "what to do, in a line")
    .option("-f, --file <backlog>", "a YAML or JSON backlog file of orders")
    .option("-s, --spec <text>", "the specification")
    .option("-a, --acceptance <text>", "how to tell it is done")
    .option("-p, --priority <n>", "higher runs first (default 0)")
    .option("--scope <paths>", "comma-separated paths the order may touch")
    .option("--key <key>", "a name other orders can depend on")
    .option("--depends-on <keys>", "comma-separated keys that must land first")
    .option("--max-attempts <n>", "attempts before the order fails")
    .option(
      "--driver <name>",
      "the agent driver for this order: builtin, claude-code, codex, opencode or gemini-cli (default: [agent] driver)",
    )
    .option("--model <name>", "the model for this order (default: [agent] model)")
    .option(
      "--holdout <paths>",
      "comma-separated hidden acceptance scenarios (files or folders) for this order; the agent never sees them",
    )
    .option("--needs-approval", "wait for `nightshift approve` before the order is queued")
    .action(async (title, options) => {
      if (!title && !options.file) {
        throw new InvalidArgumentError(
          'give a title (nightshift add "title") or a backlog file (--file backlog.yaml).',
        );
      }
      const { addCommand } = await import("./commands/add.ts");
      print(await addCommand(dir(), title, options));
    });

  program
    .command("draft-acceptance")
    .description(
      "have a model draft hidden scenarios from an order's acceptance criteria; the order waits for approve/reject",
    )
    .argument("<order>", "the order: WO-3, 3 or its key")
    .option(
      "--model <name>",
      "the writer's model (default: [gates.holdout] acceptance_model, else [agent] model)",
    )
    .action(async (order: string, options: { model?: string }) => {
      const { draftAcceptanceCommand } = await import("./commands/draft-acceptance.ts");
      print(await draftAcceptanceCommand(dir(), order, options));
    });

  program
    .command("plan")
    .description(
      "have a model break a goal or product brief into work orders (acceptance, dependencies, scopes); they wait for approval",
    )
    .argument("[goal]", "the goal, in a sentence or a paragraph")
    .option("-f, --file <brief>", "read the goal from a file (a product brief)")
    .option("--model <name>", "the planner's model (default: [planner] model, else [agent] model)")
    .option("-y, --yes", "queue the planned orders at once instead of waiting for approval")
    .option("--dry-run", "show the plan and add nothing")
    .option("--json", "machine-readable output")
    .action(async (goal: string | undefined, options) => {
      const { planCommand } = await import("./commands/plan.ts");
      print(await planCommand(dir(), goal, options));
    });

  program
    .command("issues")
    .description("take in the open GitHub issues labelled for the line ([github]) as work orders")
    .option(
      "-l, --label <name>",
      "a label to look for instead of [github] labels (repeatable)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action(async (options: { label?: string[] }) => {
      const { issuesCommand } = await import("./commands/issues.ts");
      print(await issuesCommand(dir(), options));
    });

  const controls = [
    ["retry", "queue a failed or cancelled order again, with a fresh set of attempts"],
    ["requeue", "take a running order (e.g. one whose worker is gone) back to the queue"],
    ["cancel", "cancel an order that has not landed"],
    ["approve", "queue an order that waits for a person (and activate its drafted scenarios)"],
    ["reject", "cancel an order that waits for a person (and discard its drafted scenarios)"],
  ] as const;
  for (const [action, description] of controls) {
    program
      .command(action)
      .description(description)
      .argument("<order>", "the order: WO-3, 3 or its key")
      .option("-n, --note <text>", "why (kept in the ledger)")
      .action(async (order: string, options: { note?: string }) => {
        const { orderControlCommand } = await import("./commands/controls.ts");
        print(await orderControlCommand(dir(), action, order, options));
      });
  }
  for (const [action, description] of [
    ["pause", "pause the line: no worker sharing the ledger starts a new run"],
    ["resume", "let a paused line (by its circuit breaker or a person) take work again"],
  ] as const) {
    program
      .command(action)
      .description(description)
      .option("-n, --note <text>", "why (kept in the ledger)")
      .action(async (options: { note?: string }) => {
        const { lineSwitchCommand } = await import("./commands/controls.ts");
        print(await lineSwitchCommand(dir(), action, options));
      });
  }
  program
    .command("stop")
    .description("stop a running run; its order then waits for a person (approve or reject)")
    .argument("<run>", "the run: 12 or run-12")
    .option("-n, --note <text>", "why (kept in the ledger)")
    .action(async (run: string, options: { note?: string }) => {
      const { stopRunCommand } = await import("./commands/controls.ts");
      print(await stopRunCommand(dir(), run, options));
    });
  program
    .command("priority")
    .description("change an order's priority (higher runs first)")
    .argument("<order>", "the order: WO-3, 3 or its key")
    .argument("<priority>", "a whole number from -1000 to 1000")
    .option("-n, --note <text>", "why (kept in the ledger)")
    .action(async (order: string, priority: string, options: { note?: string }) => {
      const { priorityCommand } = await import("./commands/controls.ts");
      print(await priorityCommand(dir(), order, priority, options));
    });
  const budget = program
    .command("budget")
    .description(
      "the factory's spending limits: where each is set and what is spent against it; change them live",
    )
    .option("--json", "machine-readable output")
    .action(async (options: { json?: boolean }) => {
      const { budgetShowCommand } = await import("./commands/budget.ts");
      print(await budgetShowCommand(dir(), options));
    });
  budget
    .command("set")
    .description(
      "override a [budget] limit of nightshift.toml, live: the gateways apply it to their next request",
    )
    .argument(
      "<key>",
      "max_tokens_per_run, max_usd_per_run, max_usd_per_order, max_usd_per_day or max_usd_total",
    )
    .argument("<value>", "US dollars (tokens for max_tokens_per_run); 0 or more")
    .option("-n, --note <text>", "why (kept in the ledger)")
    .action(async (key: string, value: string, options: { note?: string }) => {
      const { budgetSetCommand } = await import("./commands/budget.ts");
      print(await budgetSetCommand(dir(), key, value, options));
    });
  budget
    .command("clear")
    .description("clear a limit's override: nightshift.toml's value applies again")
    .argument("<key>", "the limit, as for `budget set`")
    .option("-n, --note <text>", "why (kept in the ledger)")
    .action(async (key: string, options: { note?: string }) => {
      const { budgetClearCommand } = await import("./commands/budget.ts");
      print(await budgetClearCommand(dir(), key, options));
    });
  budget
    .command("order")
    .description("change the tokens one run of an order may spend")
    .argument("<order>", "the order: WO-3, 3 or its key")
    .argument("<tokens>", 'a whole number of tokens, or "default" for [budget] max_tokens_per_run')
    .option("-n, --note <text>", "why (kept in the ledger)")
    .action(async (order: string, tokens: string, options: { note?: string }) => {
      const { orderBudgetCommand } = await import("./commands/controls.ts");
      print(await orderBudgetCommand(dir(), order, tokens, options));
    });
  program
    .command("defect")
    .description("act on defects")
    .command("close")
    .description("close an open defect")
    .argument("<defect>", "the defect: D-4 or 4")
    .option("-n, --note <text>", "why (kept in the ledger)")
    .action(async (defect: string, options: { note?: string }) => {
      const { defectCloseCommand } = await import("./commands/controls.ts");
      print(await defectCloseCommand(dir(), defect, options));
    });

  program
    .command("run")
    .description("work the queue with N concurrent runs; stop when it is empty")
    .option("--forever", "keep polling for new orders until interrupted")
    .addOption(
      new Option("-c, --concurrency <n>", "runs at once (overrides nightshift.toml)").argParser(
        integer(1, 64),
      ),
    )
    .option("--no-console", "do not serve the web console")
    .option("--console-host <host>", "the console's address (default 127.0.0.1)")
    .addOption(
      new Option(
        "--console-port <n>",
        "the console's port (default 4646, else any free one; 0: any free one)",
      ).argParser(integer(0, 65_535)),
    )
    .option(
      "--console-token <token>",
      "the console's access token, required off loopback (default: NIGHTSHIFT_CONSOLE_TOKEN)",
    )
    .action(async (options) => {
      const { runCommand } = await import("./commands/run.ts");
      process.exitCode = await runCommand(
        dir(),
        {
          ...options,
          console:
            options.console === false
              ? false
              : {
                  ...(options.consoleHost ? { host: options.consoleHost } : {}),
                  ...(options.consolePort !== undefined ? { port: options.consolePort } : {}),
                  ...(options.consoleToken ? { token: options.consoleToken } : {}),
                },
        },
        print,
      );
    });

  program
    .command("watch")
    .description("watch the line live in the terminal (one line per change when piped)")
    .option("--url <url>", "read the console of the process that holds the ledger at this address")
    .option("--plain", "one line per change, even on a terminal")
    .action(async (options: { url?: string; plain?: boolean }) => {
      const { watchCommand } = await import("./commands/watch.ts");
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        await watchCommand(dir(), options, (text) => process.stdout.write(text), stop.signal);
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });

  program
    .command("console")
    .description("serve the supervisor's web console (and its HTTP API) until interrupted")
    .option("--host <host>", "address to listen on (a non-loopback one needs a token)", "127.0.0.1")
    .addOption(
      new Option("--port <n>", "port (0 picks a free one)")
        .argParser(integer(0, 65_535))
        .default(4646),
    )
    .option("--token <token>", "access token (default: NIGHTSHIFT_CONSOLE_TOKEN)")
    .action(async (options) => {
      const { consoleCommand } = await import("./commands/console.ts");
      await consoleCommand(dir(), options, print);
    });

  program
    .command("worker")
    .description(
      "take orders from the (shared) ledger until stopped; SIGTERM drains: no new claims, runs finish or go back to the queue",
    )
    .addOption(
      new Option("-c, --concurrency <n>", "runs at once (overrides nightshift.toml)").argParser(
        integer(1, 64),
      ),
    )
    .addOption(
      new Option(
        "--drain-seconds <n>",
        "on SIGTERM, how long runs may finish before they go back to the queue (overrides [scale] drain_seconds)",
      ).argParser(integer(0, 86_400)),
    )
    .action(async (options) => {
      const { workerCommand } = await import("./commands/worker.ts");
      process.exitCode = await workerCommand(dir(), options, print);
    });

  program
    .command("doctor")
    .description(
      "check that the line can start: providers, keys, prices, agent CLIs, one cheap request per provider",
    )
    .action(async () => {
      const { doctorCommand } = await import("./commands/doctor.ts");
      process.exitCode = await doctorCommand(dir(), print);
    });

  program
    .command("status")
    .description("show work orders, runs and totals")
    .option("--json", "machine-readable output")
    .action(async (options) => {
      const { statusCommand } = await import("./commands/status.ts");
      print(await statusCommand(dir(), options));
    });

  program
    .command("report")
    .description(
      "the factory's measured economics: runs, landed changes, yield, cost per landed change, tokens per landed line",
    )
    .option("--json", "machine-readable output")
    .action(async (options) => {
      const { reportCommand } = await import("./commands/report.ts");
      print(await reportCommand(dir(), options));
    });

  program
    .command("econ")
    .description(
      "the rough math from the price table: requests per second for a budget, cost per day, engineers' salaries",
    )
    .option("--model <name>", "the model to price (default: [agent] model, else claude-opus-5)")
    .addOption(
      new Option("--budget-per-day <usd>", "spend per day (default: one salary a year)").argParser(
        positiveNumber,
      ),
    )
    .addOption(
      new Option("--rps <n>", "requests per second, to price by the day").argParser(positiveNumber),
    )
    .addOption(
      new Option("--input-tokens <n>", "input tokens per request (default 20000)").argParser(
        integer(0, 10_000_000),
      ),
    )
    .addOption(
      new Option("--output-tokens <n>", "output tokens per request (default 1000)").argParser(
        integer(0, 10_000_000),
      ),
    )
    .addOption(
      new Option("--cached-share <p>", "share of input served from cache (default 0)").argParser(
        fraction,
      ),
    )
    .addOption(
      new Option(
        "--salary <usd>",
        "an engineer's cost per year (default [economics] salary_usd, 250000)",
      ).argParser(positiveNumber),
    )
    .option("--json", "machine-readable output")
    .action(async (options) => {
      const { econCommand } = await import("./commands/econ.ts");
      print(await econCommand(dir(), options));
    });

  program
    .command("demo")
    .description("run the factory on a sample repository with the model simulator")
    .option(
      "--repo <path>",
      "create the sample repository here (a new or empty folder) instead of a temp folder; -C/--dir <path> does the same",
    )
    .addOption(
      new Option("--orders <n>", `how many demo work orders (1-${demoOrders.length})`)
        .argParser(integer(1, demoOrders.length))
        .default(demoOrders.length),
    )
    .addOption(
      new Option("-c, --concurrency <n>", "runs at once").argParser(integer(1, 16)).default(3),
    )
    .addOption(
      new Option("--broken-rate <p>", "share of first attempts with a broken patch")
        .argParser(fraction)
        .default(0.25),
    )
    .addOption(
      new Option("--give-up-rate <p>", "share of first attempts that give up")
        .argParser(fraction)
        .default(0.05),
    )
    .addOption(new Option("--seed <n>", "simulator seed").argParser(integer(0, 2 ** 31)).default(7))
    .action(async (options) => {
      // `demo --dir PATH` reaches the program's -C/--dir (commander reads program options after the
      // command name too): given there, it names the sample repository's folder like --repo.
      const given = program.getOptionValueSource("dir") === "cli" ? dir() : undefined;
      const repo = options.repo ?? given;
      const { demoCommand } = await import("./commands/demo.ts");
      await demoCommand({ ...options, ...(repo ? { repo: path.resolve(repo) } : {}) }, print);
    });

  program
    .command("transcript")
    .description("show a run's model requests and replies, as the gateway recorded them")
    .argument("<run>", "the run's number (see nightshift status --json)", integer(1, 2 ** 31))
    .option("--json", "machine-readable output")
    .action(async (run: number, options) => {
      const { transcriptCommand } = await import("./commands/transcript.ts");
      print(await transcriptCommand(dir(), run, options));
    });

  program
    .command("gateway")
    .description("serve the factory's model gateway (metering, budgets, scoped keys) on its own")
    .action(async () => {
      const { gatewayCommand } = await import("./commands/gateway.ts");
      await gatewayCommand(dir(), print);
    });

  program
    .command("sim")
    .description(
      "serve the model simulator (OpenAI Chat Completions and Responses, Anthropic Messages, Gemini) on loopback",
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .addOption(
      new Option("--port <n>", "port (0 picks a free one)")
        .argParser(integer(0, 65_535))
        .default(4010),
    )
    .addOption(new Option("--seed <n>", "seed").argParser(integer(0, 2 ** 31)).default(1))
    .addOption(
      new Option("--broken-rate <p>", "share of broken patches").argParser(fraction).default(0.2),
    )
    .addOption(
      new Option("--give-up-rate <p>", "share of give-ups").argParser(fraction).default(0.05),
    )
    .option(
      "--scenario <file>",
      "serve a scripted scenario file (YAML or JSON) instead of the demo policy",
    )
    .addOption(
      new Option("--first-token-ms <ms>", "delay before the first token").argParser(
        integer(0, 600_000),
      ),
    )
    .addOption(
      new Option("--tokens-per-second <n>", "output speed of streamed replies").argParser(
        integer(1, 1_000_000),
      ),
    )
    .option(
      "--fault <kind=rate>",
      `inject a fault at a rate (repeatable): ${FAULT_KINDS.join(", ")}`,
      collectFault,
      {},
    )
    .action(async (options) => {
      const { simCommand } = await import("./commands/sim.ts");
      await simCommand(options, print);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    // Raised by commander itself, which has already printed the message and the usage; an
    // InvalidArgumentError thrown by an action has not been printed yet.
    if (error instanceof CommanderError && !(error instanceof InvalidArgumentError)) {
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`nightshift: ${describeError(error)}\n`);
    process.exitCode = isNightshiftError(error) || error instanceof InvalidArgumentError ? 2 : 1;
  }
}
