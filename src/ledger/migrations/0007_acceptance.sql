-- Issue 10: hidden acceptance per order, a baseline check of main, and a person's controls.
-- Numbered 0010 (not 0006) so that migrations other branches add meanwhile keep their numbers.

-- "waiting": the order waits for a person (it was added to be approved first, or scenarios were
-- drafted for it); `nightshift approve` queues it, `nightshift reject` cancels it.
alter table work_orders drop constraint work_orders_status_check;
alter table work_orders add constraint work_orders_status_check
  check (status in ('waiting', 'queued', 'running', 'landed', 'failed', 'cancelled'));

-- An order's own hidden acceptance scenarios: the agent never sees them. Active scenarios run on
-- the order's candidates and, once the order landed, on every later candidate and on main; draft
-- ones (written by a model for a person to approve) run nowhere until approved.
create table holdout_scenarios (
  id serial primary key,
  order_id integer not null references work_orders (id),
  name text not null,
  content text not null,
  status text not null default 'active' check (status in ('active', 'draft', 'rejected')),
  source text not null default 'cli',
  created_at timestamptz not null default now(),
  unique (order_id, name)
);

create index holdout_scenarios_by_order on holdout_scenarios (order_id) where status = 'active';

-- Every check of main itself against the gates (before the line starts and after each landing):
-- a failing main pauses the line with its cause, and `nightshift status` shows it.
create table baseline_checks (
  id serial primary key,
  commit_sha text not null,
  tree_sha text not null,
  passed boolean not null,
  cause text not null default '',
  at timestamptz not null default now()
);

-- A person closes a defect; when and why is kept.
alter table defects add column closed_at timestamptz;
alter table defects add column close_note text;
