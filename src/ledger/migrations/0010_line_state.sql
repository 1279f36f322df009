-- The line's own state, shared by every worker and the console: whether it is paused (by its
-- circuit breaker, or by a person), why, by whom and since when. One row; a paused line claims no
-- new work until a person resumes it (or its breaker's probe run succeeds after the cool-down).
create table line_state (
  id integer primary key default 1 check (id = 1),
  paused boolean not null default false,
  paused_reason text,
  paused_by text,
  paused_at timestamptz
);

insert into line_state (id) values (1);
