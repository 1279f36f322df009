import path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { describeError, isNightshiftError } from "../errors/index.ts";
import { demoOrders, FAULT_KINDS } from "../sim/index.ts";
import { addCommand } from "./commands/add.ts";
import { defectCloseCommand, orderControlCommand } from "./commands/controls.ts";
import { demoCommand } from "./commands/demo.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { gatewayCommand } from "./commands/gateway.ts";
import { initCommand } from "./commands/init.ts";
import { runCommand } from "./commands/run.ts";
import { collectFault, simCommand } from "./commands/sim.ts";
import { statusCommand } from "./commands/status.ts";
import { transcriptCommand } from "./commands/transcript.ts";

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

export function buildProgram(): Command {
  const program = new Command("nightshift")
    .description("A software factory: coding agents on a perpetual loop; main is never red.")
    .option("-C, --dir <path>", "the repository to work on", ".")
    .showHelpAfterError()
    // Usage errors (bad option values, unknown options) throw instead of exiting with 1, so that
    // main() gives them the same exit code 2 as every other kind of bad input.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });
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
    .action(async (options) => print(await initCommand(dir(), options)));

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
      print(await addCommand(dir(), title, options));
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
      .action(async (order: string, options: { note?: string }) =>
        print(await orderControlCommand(dir(), action, order, options)),
      );
  }
  program
    .command("defect")
    .description("act on defects")
    .command("close")
    .description("close an open defect")
    .argument("<defect>", "the defect: D-4 or 4")
    .option("-n, --note <text>", "why (kept in the ledger)")
    .action(async (defect: string, options: { note?: string }) =>
      print(await defectCloseCommand(dir(), defect, options)),
    );

  program
    .command("run")
    .description("work the queue with N concurrent runs; stop when it is empty")
    .option("--forever", "keep polling for new orders until interrupted")
    .addOption(
      new Option("-c, --concurrency <n>", "runs at once (overrides nightshift.toml)").argParser(
        integer(1, 64),
      ),
    )
    .action(async (options) => {
      process.exitCode = await runCommand(dir(), options, print);
    });

  program
    .command("doctor")
    .description(
      "check that the line can start: providers, keys, prices, agent CLIs, one cheap request per provider",
    )
    .action(async () => {
      process.exitCode = await doctorCommand(dir(), print);
    });

  program
    .command("status")
    .description("show work orders, runs and totals")
    .option("--json", "machine-readable output")
    .action(async (options) => print(await statusCommand(dir(), options)));

  program
    .command("demo")
    .description("run the factory on a sample repository with the model simulator")
    .option(
      "--dir <path>",
      "create the sample repository here (an empty folder) instead of a temp folder",
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
      await demoCommand(options, print);
    });

  program
    .command("transcript")
    .description("show a run's model requests and replies, as the gateway recorded them")
    .argument("<run>", "the run's number (see nightshift status --json)", integer(1, 2 ** 31))
    .option("--json", "machine-readable output")
    .action(async (run: number, options) => print(await transcriptCommand(dir(), run, options)));

  program
    .command("gateway")
    .description("serve the factory's model gateway (metering, budgets, scoped keys) on its own")
    .action(async () => gatewayCommand(dir(), print));

  program
    .command("sim")
    .description("serve the model simulator (OpenAI and Anthropic protocols) on loopback")
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
    .action(async (options) => simCommand(options, print));

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
