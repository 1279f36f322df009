-- The merge queue survives a restart: a run that reached the queue keeps its place there. Its
-- candidate (a commit on its branch) already passed the candidate gates, so after a crash the next
-- worker adopts the run and puts the candidate back in the queue in its original order, instead of
-- paying for a new agent run.

create sequence merge_queue_seq;

-- Set when the run entered the merge queue; orders the queue after a restart.
alter table runs add column queue_seq bigint;
-- Merge-queue tests the candidate took part in, carried over a restart (the gate-round cap).
alter table runs add column queue_rounds integer not null default 0;
-- How many times a worker took the run over after its worker died; a candidate that keeps taking
-- the factory down with it is not adopted forever.
alter table runs add column adoptions integer not null default 0;
