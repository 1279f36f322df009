-- Budgets live in the ledger, so they hold across gateway restarts, key reissues and several
-- gateway processes sharing one PostgreSQL. An account is one budget scope: 'run:<id>',
-- 'order:<id>', 'day:<YYYY-MM-DD>' (UTC) or 'total'. `spent` grows in the same transaction that
-- writes the metered model_requests rows; `reserved` is what requests in flight may still spend.

create table budget_accounts (
  key text primary key,
  spent_tokens bigint not null default 0,
  spent_usd double precision not null default 0,
  reserved_tokens bigint not null default 0,
  reserved_usd double precision not null default 0
);

-- One row per request in flight: what it reserved on which accounts, released when its
-- model_requests row is written (or when it expires, should its gateway process die first).
create table budget_reservations (
  request_id text primary key,
  accounts jsonb not null,
  tokens bigint not null,
  usd double precision not null,
  day text not null,
  expires_at timestamptz not null
);

create index budget_reservations_by_expiry on budget_reservations (expires_at);

-- A metered row the ledger refused (it names a run that does not exist, say): kept with the
-- reason for a person to look at, so that one bad row never holds back the others.
create table model_request_dead_letters (
  id bigserial primary key,
  request_id text not null,
  row jsonb not null,
  reason text not null,
  at timestamptz not null default now()
);

-- Spend metered before this migration counts against the budgets from now on.
insert into budget_accounts (key, spent_tokens, spent_usd)
select 'run:' || run_id, sum(input_tokens + output_tokens), sum(cost_usd)
from model_requests where run_id is not null group by run_id;

insert into budget_accounts (key, spent_tokens, spent_usd)
select 'order:' || order_id, sum(input_tokens + output_tokens), sum(cost_usd)
from model_requests where order_id is not null group by order_id;

insert into budget_accounts (key, spent_tokens, spent_usd)
select 'day:' || to_char(at at time zone 'UTC', 'YYYY-MM-DD'), sum(input_tokens + output_tokens),
  sum(cost_usd)
from model_requests group by 1;

insert into budget_accounts (key, spent_tokens, spent_usd)
select 'total', coalesce(sum(input_tokens + output_tokens), 0), coalesce(sum(cost_usd), 0)
from model_requests;
