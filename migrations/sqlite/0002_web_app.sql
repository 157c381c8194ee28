-- The worker web app: browser sessions, one-time sign-in links and the photos sent as proof.
-- Tokens are stored only as SHA-256 hashes; timestamps are Unix milliseconds.

CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    worker_id   TEXT NOT NULL REFERENCES workers (id),
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX web_sessions_worker ON web_sessions (worker_id);

CREATE TABLE web_sign_in_links (
    token_hash  TEXT PRIMARY KEY,
    worker_id   TEXT NOT NULL REFERENCES workers (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

-- A photo uploaded for an assignment, stored on disk under its SHA-256 (hex) name.
CREATE TABLE proof_photos (
    assignment_id  TEXT NOT NULL REFERENCES assignments (id),
    sha256         TEXT NOT NULL,
    task_id        TEXT NOT NULL REFERENCES tasks (id),
    worker_id      TEXT NOT NULL REFERENCES workers (id),
    content_type   TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    exif_lat       REAL,
    exif_lng       REAL,
    exif_taken_at  TEXT,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (assignment_id, sha256)
);
CREATE INDEX proof_photos_task ON proof_photos (task_id, sha256);
