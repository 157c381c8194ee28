-- Consensus (several humans per task) and persistent partners (SQLite).

-- The most humans the task may grow to when answers split (its hold covers them all), how many
-- answers must agree, how votes are weighed, and the outcome once decided (JSON).
ALTER TABLE tasks ADD COLUMN max_workers INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN agreement INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN weighting TEXT NOT NULL DEFAULT 'none';
ALTER TABLE tasks ADD COLUMN consensus TEXT;
-- Who may take the task: 'prefer' (the agent's partners alone until first_look_until, then
-- everyone), 'only' (partners alone), 'none' (everyone at once).
ALTER TABLE tasks ADD COLUMN partners TEXT NOT NULL DEFAULT 'prefer';
ALTER TABLE tasks ADD COLUMN first_look_until INTEGER;
-- The partner bonus held per slot on top of the budget, in cents.
ALTER TABLE tasks ADD COLUMN bonus_cents INTEGER NOT NULL DEFAULT 0;

-- An agent's partners: workers whose work it liked. They see its tasks first, with the notes,
-- and are paid `bonus_bps` of the budget on top, by the agent.
CREATE TABLE partners (
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    worker_id   TEXT NOT NULL REFERENCES workers (id),
    notes       TEXT,
    bonus_bps   INTEGER NOT NULL DEFAULT 0 CHECK (bonus_bps BETWEEN 0 AND 5000),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, worker_id)
);
CREATE INDEX partners_worker ON partners (worker_id);

-- The partner bonus a claim was promised, paid with the result on top of the budget.
ALTER TABLE assignments ADD COLUMN bonus_cents INTEGER NOT NULL DEFAULT 0;
