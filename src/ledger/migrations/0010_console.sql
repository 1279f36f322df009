-- The supervisor's console. A person's controls are recorded with who did them, and the
-- line can be paused from any process: every worker reads the pause from here before it claims.

-- One row: whether the line takes new runs, paused by a person or by the line's circuit breaker
-- (`changed_by` says which). Workers stamp `seen_at` when they skip a claim round because of the
-- pause, so a person (and a test) can tell the pause has taken hold.
create table line_state (
  id integer primary key default 1 check (id = 1),
  paused boolean not null default false,
  reason text not null default '',
  changed_by text not null default '',
  changed_at timestamptz not null default now(),
  seen_at timestamptz
);

insert into line_state (id) values (1);

-- Every control a person used (CLI or console): what, on what, by whom, and with what note.
create table controls (
  id bigserial primary key,
  action text not null,
  order_id integer references work_orders (id),
  run_id integer references runs (id),
  actor text not null,
  note text not null default '',
  details jsonb not null default '{}',
  at timestamptz not null default now()
);

create index controls_by_time on controls (at);

-- Resuming the line may make orders claimable: wake the waiting workers as an added order does.
create trigger line_state_wake after update of paused on line_state
  for each row when (not new.paused)
  execute function nightshift_notify_work();
