-- Workers and the merge leader. Each `nightshift worker` (or `run`) process registers a row and
-- renews its heartbeat on every turn of its loop, so `status` can show who is working where; its
-- runs are counted from `runs` (worker_id), not kept here, so the two never disagree. A worker that
-- stops says so (state 'stopped'); one killed with -9 is told apart by its stale heartbeat.
create table workers (
  id text primary key,
  host text not null,
  pid integer not null,
  concurrency integer not null,
  state text not null default 'working' check (state in ('working', 'draining', 'stopped')),
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  stopped_at timestamptz
);

-- The single merge leader: one row at most, held under a lease measured by the database's clock
-- (hosts' clocks may disagree). A worker leads while it renews the lease; when it dies, the next
-- worker to ask after the lease ran out takes over. A row rather than an advisory lock because an
-- advisory lock lives in one session, which a pooled connection does not give, and because the
-- embedded PGlite ledger runs the same SQL.
create table merge_leader (
  singleton boolean primary key default true check (singleton),
  worker_id text not null,
  lease_expires_at timestamptz not null,
  since timestamptz not null default now()
);
