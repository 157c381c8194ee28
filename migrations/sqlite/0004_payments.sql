-- Real money through Stripe: top-ups confirmed by signed webhooks, what Stripe reported about
-- each payment (refunds, disputes), worker payouts as Connect transfers, and spend policies.
-- Timestamps are Unix milliseconds; money is integer cents.

-- The world on the other side of Stripe (the one Stripe account allowed below zero, like
-- external:test_funding), and the platform's losses: reversals an agent's balance could not
-- cover. Losses are debits, never hidden; the account's balance is what was lost.
INSERT INTO accounts (id, kind, owner_id, currency, no_overdraft, created_at) VALUES
    ('external:stripe', 'external', NULL, 'usd', 0, 0),
    ('platform:losses', 'platform', NULL, 'usd', 0, 0)
ON CONFLICT (id) DO NOTHING;

-- Every Stripe event that changed (or was read and changed nothing in) the books, recorded in
-- the same transaction as its effect: a second delivery of the same event finds its id here.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    received_at  INTEGER NOT NULL
);

-- A top-up an agent asked for: one Checkout Session. `credited_cents` went to the agent;
-- `reversed_cents` was taken back from the agent's balance after a refund or dispute, and
-- `loss_cents` is the part of a reversal the balance could not cover (booked to platform:losses).
CREATE TABLE topups (
    id                   TEXT PRIMARY KEY,
    agent_id             TEXT NOT NULL REFERENCES agents (id),
    amount_cents         INTEGER NOT NULL CHECK (amount_cents > 0),
    currency             TEXT NOT NULL,
    status               TEXT NOT NULL,
    checkout_session_id  TEXT UNIQUE,
    checkout_url         TEXT,
    payment_intent_id    TEXT UNIQUE,
    credited_cents       INTEGER NOT NULL DEFAULT 0 CHECK (credited_cents >= 0),
    reversed_cents       INTEGER NOT NULL DEFAULT 0 CHECK (reversed_cents >= 0),
    loss_cents           INTEGER NOT NULL DEFAULT 0 CHECK (loss_cents >= 0),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    CHECK (reversed_cents + loss_cents <= credited_cents)
);
CREATE INDEX topups_agent ON topups (agent_id, created_at);

-- What Stripe has said about one payment, whatever order its events came in: the most it
-- reported as paid and as refunded. `topup_id` is known once an event names the top-up.
CREATE TABLE stripe_payments (
    payment_intent_id  TEXT PRIMARY KEY,
    topup_id           TEXT REFERENCES topups (id),
    succeeded_cents    INTEGER NOT NULL DEFAULT 0,
    refunded_cents     INTEGER NOT NULL DEFAULT 0,
    updated_at         INTEGER NOT NULL
);

-- Disputes (chargebacks) of a payment, at the last status Stripe reported. A closed dispute
-- (won or lost) is never reopened by an older event arriving late.
CREATE TABLE stripe_disputes (
    id                 TEXT PRIMARY KEY,
    payment_intent_id  TEXT NOT NULL,
    amount_cents       INTEGER NOT NULL,
    status             TEXT NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX stripe_disputes_payment ON stripe_disputes (payment_intent_id);

-- A worker's Stripe Express account, where payouts go.
CREATE TABLE worker_stripe_accounts (
    worker_id   TEXT PRIMARY KEY REFERENCES workers (id),
    account_id  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- One Connect transfer to a worker. `pending` money sits in the worker's transit account until
-- Stripe confirms (`paid`) or refuses (`failed`, money back to the worker with the reason).
-- The Stripe idempotency key is derived from `id`, so a retry never pays twice.
CREATE TABLE payouts (
    id                  TEXT PRIMARY KEY,
    worker_id           TEXT NOT NULL REFERENCES workers (id),
    amount_cents        INTEGER NOT NULL CHECK (amount_cents > 0),
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    stripe_account_id   TEXT NOT NULL,
    stripe_transfer_id  TEXT,
    failure_reason      TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX payouts_worker ON payouts (worker_id, created_at);
-- At most one payout of a worker in flight, also across processes running payouts at once.
CREATE UNIQUE INDEX payouts_one_pending ON payouts (worker_id) WHERE status = 'pending';

-- Limits on what an agent may commit to tasks. NULL means no limit.
CREATE TABLE spend_policies (
    agent_id                  TEXT PRIMARY KEY REFERENCES agents (id),
    daily_limit_cents         INTEGER,
    per_task_limit_cents      INTEGER,
    approval_threshold_cents  INTEGER,
    updated_at                INTEGER NOT NULL
);

-- A task above the agent's approval threshold, waiting for (or given) an operator's approval.
-- The agent retries the same request (same idempotency key or arguments) once approved.
CREATE TABLE spend_approvals (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agents (id),
    request_hash  TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used')),
    created_at    INTEGER NOT NULL,
    decided_at    INTEGER
);
CREATE INDEX spend_approvals_agent ON spend_approvals (agent_id, request_hash);
