-- Every model request the gateway forwarded (or refused), metered exactly once.

create table model_requests (
  id bigserial primary key,
  request_id text not null unique,
  run_id integer references runs (id),
  order_id integer references work_orders (id),
  protocol text not null,
  model text not null,
  status integer not null,
  stream boolean not null,
  input_tokens integer not null default 0,
  output_tokens integer not null default 0,
  cached_input_tokens integer not null default 0,
  cost_usd double precision not null default 0,
  usage_estimated boolean not null default false,
  latency_ms integer not null,
  attempts integer not null default 1,
  error text,
  at timestamptz not null default now()
);

create index model_requests_by_run on model_requests (run_id);
create index model_requests_by_order on model_requests (order_id);
create index model_requests_by_time on model_requests (at);
