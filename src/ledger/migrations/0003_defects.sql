-- Failures worth a person's look (an escape attempt, a gate that keeps failing, a meltdown):
-- raised by the line, shown by `nightshift status`, closed by a person.

create table defects (
  id serial primary key,
  kind text not null,
  order_id integer references work_orders (id),
  run_id integer references runs (id),
  summary text not null,
  evidence jsonb not null default '[]',
  status text not null default 'open',
  at timestamptz not null default now()
);

create index defects_open on defects (status, at);
-- One defect of a kind per run: a run that keeps trying raises it once.
create unique index defects_once_per_run on defects (run_id, kind) where run_id is not null;
