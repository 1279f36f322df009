-- The factory's spending limits, editable live. A row overrides its [budget] key in nightshift.toml
-- until a person clears it (console or CLI; each change is recorded in `controls`). Gateways read
-- the effective limits without a restart: `version` goes up with every change, and a gateway
-- sharing PostgreSQL compares it before each batch of reservations it decides.
create table budget_limits (
  name text primary key check (name in (
    'max_tokens_per_run', 'max_usd_per_run', 'max_usd_per_order', 'max_usd_per_day', 'max_usd_total'
  )),
  value double precision not null check (value >= 0),
  set_by text not null,
  set_at timestamptz not null default now()
);

create table budget_limits_version (
  id integer primary key default 1 check (id = 1),
  version bigint not null default 0
);

insert into budget_limits_version (id) values (1);
