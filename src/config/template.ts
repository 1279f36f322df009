/** The commented nightshift.toml that `nightshift init` writes. Every value shown is the default. */
export function configTemplate(options: { name: string; branch: string; test: string }): string {
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
# Which coding agent works the orders: "builtin" is nightshift's own agent.
driver = "builtin"
model = "sim-demo"
# Most model round-trips one run may take before it is stopped.
max_steps = 30
# Most seconds one command the agent runs may take.
command_timeout_seconds = 300

[model]
# "simulator" starts the bundled model simulator (no key, no network, simulated cost);
# "openai-compatible" talks to base_url with the key in the environment variable api_key_env.
provider = "simulator"
# base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"

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
# The test gate: must pass in the run's worktree, and again after rebasing onto ${options.branch}.
test = ${JSON.stringify(options.test)}
timeout_seconds = 600

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

[simulator]
# Only used when [model] provider = "simulator".
seed = 1
broken_patch_rate = 0.2
give_up_rate = 0.05
fix_on_feedback_rate = 0.9
first_token_ms = 0
`;
}
