-- Honeypots, the tied-account check and AI-image scores (PostgreSQL).

-- The platform's own agent. It posts the honeypot tasks, and its account pays for them; the
-- account may go below zero, as it stands for what the platform spends on testing its workers.
-- It has no API key, so nobody can act as it.
INSERT INTO agents (id, name, webhook_secret, created_at)
    VALUES ('agt_humanping', 'HumanPing', '', 0);
INSERT INTO accounts (id, kind, owner_id, currency, no_overdraft, created_at)
    VALUES ('agent:agt_humanping', 'platform', 'agt_humanping', 'usd', 0, 0);

-- A honeypot as the operator wrote it: a task request with a known answer. Each worker it is
-- shown to gets a task of their own made from it (honeypot_tasks).
CREATE TABLE honeypots (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    -- The task request, as JSON in the shape of POST /v1/tasks.
    request     TEXT NOT NULL,
    -- The known answer, in the structured form the response format reads answers into.
    expected    TEXT NOT NULL,
    budget_cents BIGINT NOT NULL CHECK (budget_cents > 0),
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);

-- A task made from a honeypot for one worker; its verdict is kept apart from the task so no
-- view of the task can show it.
CREATE TABLE honeypot_tasks (
    task_id      TEXT PRIMARY KEY REFERENCES tasks (id),
    honeypot_id  TEXT NOT NULL REFERENCES honeypots (id),
    worker_id    TEXT NOT NULL REFERENCES workers (id),
    -- 'right' or 'wrong' once the worker answered.
    verdict      TEXT CHECK (verdict IN ('right', 'wrong')),
    created_at   BIGINT NOT NULL,
    UNIQUE (honeypot_id, worker_id)
);
CREATE INDEX honeypot_tasks_worker ON honeypot_tasks (worker_id);

-- Public network addresses an agent's or worker's requests came from, as salted hashes: a
-- worker seen at an agent's address is tied to that agent.
CREATE TABLE principal_addresses (
    principal_id  TEXT NOT NULL,
    address_hash  TEXT NOT NULL,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    PRIMARY KEY (principal_id, address_hash)
);
CREATE INDEX principal_addresses_hash ON principal_addresses (address_hash);

-- Contact addresses, lower-cased; an agent and a worker sharing one are tied.
ALTER TABLE agents ADD COLUMN email TEXT;
ALTER TABLE workers ADD COLUMN email TEXT;

-- The likelihood (0 to 1) that a proof photo is AI-generated, when a detector was asked.
ALTER TABLE proof_photos ADD COLUMN ai_score DOUBLE PRECISION;

-- Settings the installation makes for itself once.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
-- The secret salt of the network address hashes above.
INSERT INTO settings (name, value) VALUES ('address_salt',
    md5(random()::text || clock_timestamp()::text) || md5(random()::text || clock_timestamp()::text));
