-- The line's core: work orders, the runs that attempt them, what happened in each run, the gates
-- each candidate passed or failed, what landed, and every state change.

create table work_orders (
  id serial primary key,
  key text unique,
  title text not null,
  spec text not null default '',
  acceptance text not null default '',
  priority integer not null default 0,
  scope jsonb not null default '[]',
  depends_on jsonb not null default '[]',
  status text not null default 'queued'
    check (status in ('queued', 'running', 'landed', 'failed', 'cancelled')),
  attempts integer not null default 0,
  max_attempts integer,
  budget_tokens integer,
  feedback text,
  failure_reason text,
  landed_commit text,
  source text not null default 'cli',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index work_orders_queue on work_orders (priority desc, id) where status = 'queued';

create table runs (
  id serial primary key,
  order_id integer not null references work_orders (id),
  attempt integer not null,
  status text not null default 'running'
    check (status in ('running', 'landed', 'rejected', 'failed', 'abandoned')),
  phase text not null default 'starting',
  agent text not null,
  model text not null,
  worker_id text not null,
  lease_expires_at timestamptz not null,
  workspace_path text,
  branch text,
  base_commit text,
  candidate_commit text,
  merge_commit text,
  input_tokens integer not null default 0,
  output_tokens integer not null default 0,
  cost_usd double precision not null default 0,
  outcome_reason text,
  started_at timestamptz not null default now(),
  ended_at timestamptz
);

create index runs_by_order on runs (order_id);
create index runs_live on runs (lease_expires_at) where status = 'running';

create table run_events (
  id bigserial primary key,
  run_id integer not null references runs (id),
  seq integer not null,
  kind text not null,
  payload jsonb not null,
  at timestamptz not null default now(),
  unique (run_id, seq)
);

create table gate_results (
  id serial primary key,
  run_id integer not null references runs (id),
  gate text not null,
  stage text not null check (stage in ('candidate', 'merge')),
  commit_sha text not null,
  passed boolean not null,
  exit_code integer,
  timed_out boolean not null default false,
  output text not null default '',
  duration_ms integer not null,
  at timestamptz not null default now()
);

create index gate_results_by_run on gate_results (run_id);

create table merges (
  id serial primary key,
  order_id integer not null references work_orders (id),
  run_id integer not null unique references runs (id),
  previous_main text not null,
  landed_commit text not null unique,
  at timestamptz not null default now()
);

create table transitions (
  id bigserial primary key,
  order_id integer not null references work_orders (id),
  run_id integer references runs (id),
  entity text not null check (entity in ('order', 'run')),
  from_status text,
  to_status text not null,
  message text not null default '',
  at timestamptz not null default now()
);

create index transitions_by_order on transitions (order_id);
