-- HumanPing core schema (SQLite). Timestamps are Unix milliseconds; money is integer cents.

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    -- Signs the webhooks sent to this agent's callback URLs (HMAC-SHA256).
    webhook_secret  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    lat           REAL,
    lng           REAL,
    capabilities  TEXT NOT NULL DEFAULT '',
    -- Recomputed from the worker's history in the transaction of each event that changes it.
    trust_score   INTEGER NOT NULL DEFAULT 50,
    languages     TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    prefix      TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'worker', 'operator')),
    owner_id    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_owner ON api_keys (owner_id);

-- Ledger accounts, TigerBeetle style: four running totals per account, kept in the same
-- transaction as the transfer that moves them.
CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    owner_id         TEXT,
    currency         TEXT NOT NULL,
    no_overdraft     INTEGER NOT NULL,
    debits_pending   INTEGER NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    debits_posted    INTEGER NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_pending  INTEGER NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    credits_posted   INTEGER NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    created_at       INTEGER NOT NULL,
    CHECK (no_overdraft = 0 OR debits_posted + debits_pending <= credits_posted)
);

-- The platform's own accounts: fees earned, and money that came in from outside in test mode
-- (the one account allowed to go below zero, as it stands for the world outside the books).
INSERT INTO accounts (id, kind, owner_id, currency, no_overdraft, created_at) VALUES
    ('platform:fees', 'platform', NULL, 'usd', 1, 0),
    ('external:test_funding', 'external', NULL, 'usd', 0, 0);

CREATE TABLE transfers (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    debit_account_id   TEXT NOT NULL REFERENCES accounts (id),
    credit_account_id  TEXT NOT NULL REFERENCES accounts (id),
    amount             INTEGER NOT NULL CHECK (amount > 0),
    currency           TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('posted', 'pending', 'post', 'void')),
    pending_id         TEXT REFERENCES transfers (id),
    task_id            TEXT,
    memo               TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    CHECK ((kind IN ('post', 'void')) = (pending_id IS NOT NULL))
);
CREATE INDEX transfers_pending ON transfers (pending_id);
CREATE INDEX transfers_task ON transfers (task_id);

CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers
BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers
BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;

CREATE TABLE tasks (
    id                  TEXT PRIMARY KEY,
    agent_id            TEXT NOT NULL REFERENCES agents (id),
    kind                TEXT NOT NULL,
    instruction         TEXT NOT NULL,
    details             TEXT NOT NULL,
    context             TEXT,
    address             TEXT,
    lat                 REAL,
    lng                 REAL,
    radius_m            INTEGER,
    language            TEXT,
    response_format     TEXT NOT NULL,
    proof               TEXT NOT NULL,
    metadata            TEXT,
    callback_url        TEXT,
    budget_cents        INTEGER NOT NULL CHECK (budget_cents > 0),
    fee_bps             INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    slots               INTEGER NOT NULL CHECK (slots >= 1),
    status              TEXT NOT NULL,
    hold_transfer_id    TEXT NOT NULL,
    held_cents          INTEGER NOT NULL CHECK (held_cents >= 0),
    deadline_at         INTEGER NOT NULL,
    review_deadline_at  INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    completed_at        INTEGER,
    ended_at            INTEGER,
    version             INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX tasks_agent ON tasks (agent_id, created_at);
CREATE INDEX tasks_open ON tasks (status, deadline_at);
CREATE INDEX tasks_review ON tasks (status, review_deadline_at);

CREATE TABLE assignments (
    id                TEXT PRIMARY KEY,
    task_id           TEXT NOT NULL REFERENCES tasks (id),
    worker_id         TEXT NOT NULL REFERENCES workers (id),
    status            TEXT NOT NULL,
    claimed_at        INTEGER NOT NULL,
    lease_expires_at  INTEGER NOT NULL,
    submitted_at      INTEGER,
    answer            TEXT,
    structured        TEXT,
    notes             TEXT,
    proof             TEXT,
    resolved_at       INTEGER,
    paid_cents        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX assignments_task ON assignments (task_id, status);
CREATE INDEX assignments_worker ON assignments (worker_id, status);
CREATE INDEX assignments_lease ON assignments (status, lease_expires_at);
-- A worker holds at most one live slot of a task.
CREATE UNIQUE INDEX assignments_one_live_per_worker ON assignments (task_id, worker_id)
    WHERE status IN ('claimed', 'submitted', 'approved');

CREATE TABLE disputes (
    id             TEXT PRIMARY KEY,
    task_id        TEXT NOT NULL REFERENCES tasks (id),
    assignment_id  TEXT NOT NULL REFERENCES assignments (id),
    reason         TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

-- First result of every keyed request; the same key with other arguments is refused.
CREATE TABLE idempotency_keys (
    owner_id      TEXT NOT NULL,
    key           TEXT NOT NULL,
    operation     TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (owner_id, key)
);

-- Outgoing webhooks: one row per task change an agent asked to hear of, written in the same
-- transaction as the change, delivered (and retried) by a background loop.
CREATE TABLE webhook_events (
    id               TEXT PRIMARY KEY,
    task_id          TEXT NOT NULL REFERENCES tasks (id),
    agent_id         TEXT NOT NULL REFERENCES agents (id),
    url              TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    delivered_at     INTEGER,
    failed_at        INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_events_task ON webhook_events (task_id, created_at);

-- Reasons to doubt a result: shown to the agent, counted against the worker's trust, and a bar
-- to automatic approval.
CREATE TABLE fraud_flags (
    id             TEXT PRIMARY KEY,
    assignment_id  TEXT NOT NULL REFERENCES assignments (id),
    task_id        TEXT NOT NULL REFERENCES tasks (id),
    worker_id      TEXT NOT NULL REFERENCES workers (id),
    rule           TEXT NOT NULL,
    detail         TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX fraud_flags_task ON fraud_flags (task_id);
CREATE INDEX fraud_flags_worker ON fraud_flags (worker_id);

-- Workers an agent does not want on its tasks.
CREATE TABLE agent_blocks (
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    worker_id   TEXT NOT NULL REFERENCES workers (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, worker_id)
);
CREATE INDEX agent_blocks_worker ON agent_blocks (worker_id);
CREATE INDEX tasks_place ON tasks (lat, lng);
