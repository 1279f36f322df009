-- Wake-ups: a worker waiting for work is told when there may be some, instead of finding out at
-- its next poll. Every change that can make an order claimable notifies: an order added or queued
-- again (retry, requeue, a run taken back, approval), and an order landed (its dependents may now
-- start). A trigger rather than a NOTIFY beside each statement, so that no path (a person's
-- controls, recovery) can forget it. The payload is the schema, so that ledgers sharing one
-- database in different schemas (tests) wake only their own workers. PostgreSQL sends it at commit
-- and folds identical notifications of one transaction into one.
create function nightshift_notify_work() returns trigger language plpgsql as $$
begin
  perform pg_notify('nightshift_work', current_schema());
  return null;
end
$$;

create trigger work_orders_wake after insert or update of status on work_orders
  for each row when (new.status in ('queued', 'landed'))
  execute function nightshift_notify_work();
