-- Pull-request output: a gate-passed candidate proposed as a pull request for people to merge,
-- instead of landed by the line. The order (and its run) ends "proposed", with the request's URL.

alter table work_orders drop constraint work_orders_status_check;
alter table work_orders add constraint work_orders_status_check
  check (status in ('waiting', 'queued', 'running', 'landed', 'proposed', 'failed', 'cancelled'));

alter table runs drop constraint runs_status_check;
alter table runs add constraint runs_status_check
  check (status in ('running', 'landed', 'proposed', 'rejected', 'failed', 'abandoned'));

alter table work_orders add column pull_request_url text;
