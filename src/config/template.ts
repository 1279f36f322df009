import { KIND_DEFAULTS, type ProviderKind } from "./providers.ts";

/** The providers `init` writes: those whose keys it found, one the user chose, or none yet. */
export type TemplateProviders =
  | { kinds: Exclude<ProviderKind, "simulator">[]; baseURL?: string }
  | { simulator: "demo" | "stand-in" };

/** The commented nightshift.toml that `nightshift init` writes. Every value shown is the default. */
export function configTemplate(options: {
  name: string;
  branch: string;
  test: string;
  providers?: TemplateProviders;
}): string {
  const providers = options.providers ?? { kinds: [] };
  return `# nightshift.toml: one factory line on this repository.
# Every key is optional; the values below are the defaults unless init filled them in.

[factory]
name = ${JSON.stringify(options.name)}
# The branch nightshift lands changes on. It must not be checked out in your own working copy
# while the line runs (nightshift moves it forward with git update-ref).
branch = ${JSON.stringify(options.branch)}
# Ledger, worktrees and logs live here (git-ignored through .git/info/exclude).
state_dir = ".nightshift"

[agent]
# Which coding agent works the orders: "builtin" is nightshift's own agent; "claude-code", "codex",
# "opencode" and "gemini-cli" run those CLIs (install the npm package; see docs/agents.md).
driver = "builtin"
${agentModel(providers)}
# Most model round-trips one run may take before it is stopped.
max_steps = 30
# Most seconds one command the agent runs may take.
command_timeout_seconds = 300
# Longest one CLI agent run may take; then it and everything it started are killed.
wall_time_minutes = 60
# Extra instructions for every run, handed to the CLI as its user-level CLAUDE.md / AGENTS.md:
# instructions_file = "docs/agent-instructions.md"

[agent.claude_code]
# path = "/usr/local/bin/claude"      # default: the npm package, then PATH
# "bypassPermissions" runs every tool unattended (the sandbox is the wall); "acceptEdits" allows
# file edits only (no shell commands).
permission_mode = "bypassPermissions"
disallowed_tools = ["WebFetch", "WebSearch"]

[agent.codex]
# Codex's own sandbox for its commands: "workspace-write", or "danger-full-access" when
# nightshift's sandbox wraps Codex and a nested one cannot start.
sandbox = "workspace-write"

${providersBlock(providers)}
[line]
# Runs worked at the same time.
concurrency = 2
# Attempts per work order before it is marked failed; each retry gets the last failure as feedback.
max_attempts = 3
# How often \`nightshift run --forever\` looks for new orders.
poll_interval_ms = 2000
# A run that stops renewing its lease for this long is taken back and its order queued again.
lease_seconds = 60

[gates]
# The ratchet: every candidate passes these gates in this order. Gates that judge the change (diff,
# secrets, dependencies, reviewer) run on the candidate; gates that judge the code (build,
# typecheck, lint, test, holdout) run on the candidate and again on exactly what lands on ${options.branch}.
# A gate listed here but not configured (empty command, disabled) is skipped.
order = ["diff", "secrets", "dependencies", "build", "typecheck", "lint", "test", "holdout", "reviewer"]
test = ${JSON.stringify(options.test)}
# build = "npm run build"
# typecheck = "npx tsc --noEmit"
# lint = "npx biome check ."
timeout_seconds = 600

[gates.diff]
# Changes larger than this are refused; so are changes to protected paths (default: CI config,
# lockfiles, nightshift.toml, .nightshift/) and binary files.
max_files = 50
max_lines = 2000
# protected = [".github/**", "package-lock.json", "nightshift.toml"]
allow_binary = false

[gates.secrets]
# secretlint's recommended rules on the lines a change adds (AWS, GCP, GitHub, Slack, private keys...).
enabled = true

[gates.dependencies]
# New packages in any package.json need a person's review; approved names go in allow.
enabled = true
allow = []

[gates.holdout]
# Acceptance scenarios the agent never sees, kept in state_dir/holdout (outside every worktree).
# They run in a scratch copy of the candidate; only pass/fail and the failing scenarios' names go
# back. {file} runs the command once per scenario file. Empty command: no holdout gate.
dir = "holdout"
command = ""
# command = "node --import tsx --test {file}"
# "nightshift draft-acceptance ORDER" has a model (through the gateway, metered, apart from any
# agent) draft hidden scenarios from an order's acceptance criteria; the order waits for
# "nightshift approve" (scenarios active, order queued) or "nightshift reject". With
# acceptance_writer = true, "nightshift add" does so for every order with acceptance and no scenario.
# acceptance_writer = false
# acceptance_model = ""   # empty: [agent] model

[gates.reviewer]
# A second model reads the diff and the order and approves or rejects, through the gateway.
enabled = false
# Model name at the gateway (empty: the agent's model).
model = ""

[merge]
# "speculative" tests batches of candidates together, speculates that the batches ahead pass,
# and takes a red batch apart to find the culprit; "serial" lands one candidate at a time.
queue = "speculative"
max_batch = 4
# Stacks under test at once; each runs the tree gates, so mind the cores.
depth = 2
# Gate rounds a candidate may take in the queue before its order is sent back for a fresh run.
max_rounds = 12

[budget]
# A run that has used this many model tokens is stopped.
max_tokens_per_run = 500000
# Spending limits in US dollars, enforced by the gateway on every model request (unset: no limit).
# A run over its budget is retried (up to max_attempts); an order over its budget fails; when the
# day's or the total budget runs out, the line stops taking work and the order waits in the queue.
# max_usd_per_run = 2.0
# max_usd_per_order = 10.0
# max_usd_per_day = 100.0
# max_usd_total = 1000.0

[gateway]
# Every agent talks to models only through the gateway, which holds the provider keys, gives each
# run a scoped key, meters every request and enforces the budgets. It listens on loopback.
host = "127.0.0.1"
port = 0
# A JSON price table that overrides the bundled one (USD per million tokens, dated):
# prices_file = "prices.json"
# Keep every run's model requests and replies in .nightshift/transcripts/run-<id>.jsonl.
transcripts = true
stream_idle_timeout_seconds = 120
retries = 3

[workspace]
# Worktrees of failed runs are kept for inspection, up to this many and this much disk.
keep_failed = 10
max_failed_mb = 1024

[sandbox]
# Every command a run makes (the agent's and the gates') runs in a sandbox: only its worktree is
# writable, the toolchain is read-only, HOME and /tmp are private, the environment is scrubbed, and
# the only address it can reach is the gateway. "bubblewrap" needs \`apt-get install bubblewrap\`.
# "none" runs unsandboxed and also needs allow_unsandboxed = true; every run then warns.
backend = "bubblewrap"
max_processes = 256
max_memory_mb = 4096
# Disk the worktree may use (also the largest single file).
max_workspace_mb = 2048
# CPU seconds per process.
cpu_seconds = 900
# Size of the private /tmp and HOME.
tmp_mb = 512
# Host paths every sandbox may read, e.g. a toolchain outside /usr: ["/opt/go"].
read_only = []
# Blocked attempts in one run before a defect is raised for the supervisor.
defect_after = 3
# Check that the walls hold before the line starts.
self_test = true

[watchdog]
# Stops a run that melts down, raises a meltdown_<kind> defect with the evidence, and gives the
# order a fresh run told what went wrong (on_meltdown = "retry") or hands it to a person ("fail").
# No agent event (model reply, tool call, output) for this long: stalled.
stall_seconds = 600
# This many identical tool calls in a row, or the same call failing this many times: looping.
loop_repeats = 6
# Tokens or dollars metered to one run beyond which it runs away (unset: only [budget] applies).
# max_tokens_per_run = 400000
# max_usd_per_run = 5.0
# Agent output (messages, tool output) beyond which a run floods.
max_output_mb = 32
# Blocked sandbox attempts at which a run is stopped.
escape_limit = 10
# How often a run's metered spend is read from the ledger.
check_seconds = 5
on_meltdown = "retry"

[circuit_breaker]
# When failures of the last window runs failed for reasons outside their orders (model provider
# down, stalled runs, internal errors), the line pauses itself and says why (log, status,
# ledger). \`nightshift resume\` resumes it; or, after cool_down_minutes, one probe run is let
# through and the line resumes if it succeeds (0: only a person resumes).
enabled = true
window = 10
failures = 5
cool_down_minutes = 15

[retention]
# A line that runs for days keeps its disk bounded: gateway transcripts (one file per run) beyond
# these caps go oldest first, and nightshift.log is rotated (kept worktrees: see [workspace]).
keep_transcripts = 500
max_transcripts_mb = 1024
max_log_mb = 50
keep_logs = 5
check_minutes = 10

[simulator]
# Only used by a [providers.simulator] provider. "stand-in" answers every request by saying it is
# simulated and changes nothing; "demo" plays the scripted patches of \`nightshift demo\`'s sample
# repository and refuses to run anywhere else.
policy = ${JSON.stringify("simulator" in providers ? providers.simulator : "stand-in")}
seed = 1
broken_patch_rate = 0.2
give_up_rate = 0.05
fix_on_feedback_rate = 0.9
first_token_ms = 0

[scheduler]
# "separate": an order waits while a running order's scope (its paths) overlaps its own, so that
# parallel runs do not edit the same files and collide in the merge queue; "ignore": scopes hold
# nothing back. An order without a scope runs in "parallel" with anything, or "exclusive"ly alone.
scopes = "separate"
unscoped = "parallel"

[planner]
# \`nightshift plan "goal"\` has this model (empty: [agent] model) turn a goal into work orders.
model = ""
max_orders = 20

[perpetual]
# Where \`nightshift run --forever\` finds work when the queue is dry (docs/perpetual.md):
# "goals" (a "- " line of goals_file), "tests" (a test gate that both passed and failed on one
# commit: flaky), "defects" (open defects), "todo" (todo_markers in the landing branch's files),
# "lint" (files [perpetual.lint] commands complain about), "coverage" (files below a threshold).
sources = []
# Orders found this way wait for \`nightshift approve\` (false: they are queued at once).
approval = true
goals_file = "GOALS.md"
todo_markers = ["TODO", "FIXME"]
max_orders_per_round = 3
interval_minutes = 10

[perpetual.lint]
# Checks run in a fresh checkout of the landing branch (sandboxed, as written, with the time limit);
# each committed file they complain about becomes an order. format: "auto", "tsc", "eslint-json",
# "biome-json", "github", "eslint-compact" or "generic" (file:line:col: message).
# commands = [{ name = "types", command = "npx tsc --noEmit --pretty false --strict", format = "tsc" }]
commands = []
timeout_seconds = 600

[perpetual.coverage]
# Run in a fresh checkout to write \`report\` (empty: read the report in the repository's folder);
# files covered below \`threshold\` percent of \`metric\` become orders.
command = ""
report = "coverage/coverage-summary.json"
format = "auto"
metric = "lines"
threshold = 80
timeout_seconds = 900

[github]
# Open issues labelled with one of \`labels\` become work orders (\`nightshift issues\`); the token
# is read from the variable token_env names. GitHub Enterprise: base_url = "https://HOST/api/v3".
repo = ""
base_url = "https://api.github.com"
token_env = "GITHUB_TOKEN"
labels = []
approval = false
# How often \`nightshift run\` looks for newly labelled issues.
interval_minutes = 5
# "merge": the line lands candidates itself; "pull_request": it pushes each gate-passed candidate
# to \`remote\` and opens a pull request, and the order ends "proposed" (docs/github.md).
output = "merge"
remote = "origin"

[economics]
# What \`nightshift econ\` and \`nightshift report\` compare spend with.
salary_usd = 250000
supervisors = 1
`;
}

function agentModel(providers: TemplateProviders): string {
  const kind = "simulator" in providers ? "simulator" : providers.kinds[0];
  const model = kind && KIND_DEFAULTS[kind].defaultModel;
  if (model) return `model = ${JSON.stringify(model)}`;
  return kind === "openai-compatible"
    ? '# The model your server offers, as it names it:\nmodel = "CHANGE-ME"'
    : '# The model name the agent asks for; default: the first provider\'s usual model.\n# model = "claude-sonnet-5-5"';
}

const PROVIDERS_INTRO = `# Model providers. The gateway holds their keys (read from the environment; agents never see them),
# routes each request by model (the globs in \`models\`, or a [models] entry) and translates
# between protocols where a provider lacks the agent's (docs/models.md, docs/translation.md).
# Several may be configured at once. Kinds: anthropic, openai, google, openai-compatible, simulator.`;

function providerTable(kind: Exclude<ProviderKind, "simulator">, baseURL?: string): string {
  const defaults = KIND_DEFAULTS[kind];
  if (kind === "openai-compatible") {
    return `[providers.openai-compatible]
# Any server speaking the OpenAI protocols: OpenRouter, vLLM, Ollama, LiteLLM, Azure.
base_url = ${JSON.stringify(baseURL ?? "http://127.0.0.1:11434/v1")}
# api_key_env = "OPENROUTER_API_KEY"   # unset: no key is sent (a local server)
# models = ["*"]
# protocols = ["openai-chat"]          # add "openai-responses" if the server speaks it
# auth = "bearer"                      # "api-key" for Azure; "none"
# query = { "api-version" = "2024-10-21" }`;
  }
  return `[providers.${kind}]
# api_key_env = ${JSON.stringify(defaults.apiKeyEnv)}
# base_url = ${JSON.stringify(defaults.baseURL)}
# models = ${JSON.stringify(defaults.models)}`;
}

function providersBlock(providers: TemplateProviders): string {
  if ("simulator" in providers) {
    return `${PROVIDERS_INTRO}

# SIMULATED: the bundled model simulator plays the model (no network, no key, simulated cost).
[providers.simulator]
`;
  }
  if (providers.kinds.length === 0) {
    return `${PROVIDERS_INTRO}
# None is configured yet: \`nightshift run\` refuses to start until one is. Uncomment one:
#
# [providers.anthropic]        # needs ANTHROPIC_API_KEY
# [providers.openai]           # needs OPENAI_API_KEY
# [providers.google]           # needs GEMINI_API_KEY
# [providers.simulator]        # a labelled stand-in for trying nightshift out; changes nothing
`;
  }
  return `${PROVIDERS_INTRO}

${providers.kinds.map((kind) => providerTable(kind, providers.baseURL)).join("\n\n")}

# Route a model to a provider explicitly, under the provider's own name for it:
# [models]
# "claude-sonnet-5-5" = { provider = "openrouter", model = "anthropic/claude-sonnet-5.5" }
`;
}
