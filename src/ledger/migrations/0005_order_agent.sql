-- An order may name the agent driver and the model its runs use (a hard order for a stronger
-- model, a cheap one for a weaker). Null: the factory's [agent] driver and model, as before, so
-- orders queued before this migration keep running as they would have.

alter table work_orders add column driver text;
alter table work_orders add column model text;
