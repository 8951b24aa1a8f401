//! Schema migrations, applied in order; `PRAGMA user_version` counts how many have run.
//! Never edit a shipped migration: append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the append-only, hash-chained audit log and its recorded head.
    "CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        ts        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        target    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused'); END;
    CREATE TABLE audit_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  INTEGER NOT NULL,
        hash BLOB NOT NULL
    );",
    // 2: server state — enrollment tokens, envoys, run reports, API tokens, counters.
    "CREATE TABLE enroll_tokens (
        id          TEXT PRIMARY KEY,
        token_hash  BLOB NOT NULL UNIQUE,
        envoy_name  TEXT,
        created_by  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER,
        used_by     TEXT
    );
    CREATE TABLE envoys (
        id               TEXT PRIMARY KEY,
        name             TEXT NOT NULL,
        public_key       BLOB NOT NULL UNIQUE,
        enrolled_at      INTEGER NOT NULL,
        last_seen        INTEGER,
        last_seq         INTEGER NOT NULL DEFAULT 0,
        revoked_at       INTEGER,
        last_bundle_hash TEXT,
        triggered        TEXT NOT NULL DEFAULT '[]',
        force_apply      INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX envoys_active_name ON envoys(name) WHERE revoked_at IS NULL;
    CREATE TABLE runs (
        id           TEXT PRIMARY KEY,
        envoy_id     TEXT NOT NULL REFERENCES envoys(id),
        envoy_name   TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        status       TEXT NOT NULL,
        bundle_hash  TEXT NOT NULL,
        report       TEXT NOT NULL
    );
    CREATE INDEX runs_by_envoy ON runs(envoy_name, received_at);
    CREATE TABLE api_tokens (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('admin', 'viewer', 'compliance')),
        token_hash  BLOB NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE TABLE server_state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 3: tokens bound to a name pattern; the certificate last issued to each envoy (renewal,
    // CA rollover).
    "ALTER TABLE enroll_tokens ADD COLUMN envoy_pattern TEXT;
    ALTER TABLE envoys ADD COLUMN cert_not_after INTEGER;
    ALTER TABLE envoys ADD COLUMN cert_ca_pin TEXT;",
    // 4: people. Web users (their passwords live in the vault, never here), sessions (only the
    // SHA-256 of a session id is stored), and API tokens that belong to a user and may expire.
    "CREATE TABLE web_users (
        username     TEXT PRIMARY KEY,
        role         TEXT NOT NULL CHECK (role IN ('admin', 'viewer', 'compliance')),
        display_name TEXT NOT NULL DEFAULT '',
        email        TEXT NOT NULL DEFAULT '',
        ssh_key      TEXT,
        disabled_at  INTEGER,
        created_at   INTEGER NOT NULL,
        created_by   TEXT NOT NULL,
        updated_at   INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        id_hash    BLOB PRIMARY KEY,
        username   TEXT NOT NULL,
        provider   TEXT NOT NULL,
        source     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions(username);
    ALTER TABLE api_tokens ADD COLUMN owner TEXT;
    ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;",
    // 5: rotations recorded by the CLI with their audit row, applied by the server when it is
    // told (or at its next start or publish, if it was down).
    "CREATE TABLE pending_rotations (
        key         TEXT PRIMARY KEY,
        recorded_at INTEGER NOT NULL,
        actor       TEXT NOT NULL
    );",
    // 6: the console's lookups (the audit log by event and by actor, runs by time and each
    // envoy's latest run) and the RustSec advisories imported with `vigocli advisories import`.
    "CREATE INDEX audit_by_action ON audit(action, seq);
    CREATE INDEX audit_by_actor ON audit(actor, seq);
    CREATE INDEX runs_by_time ON runs(received_at, status);
    CREATE INDEX runs_latest ON runs(envoy_id, received_at, status);
    CREATE INDEX envoys_by_name ON envoys(name);
    CREATE TABLE advisories (
        id            TEXT PRIMARY KEY,
        package       TEXT NOT NULL,
        title         TEXT NOT NULL,
        date          TEXT NOT NULL,
        url           TEXT NOT NULL,
        informational TEXT,
        aliases       TEXT NOT NULL,
        patched       TEXT NOT NULL,
        unaffected    TEXT NOT NULL
    );
    CREATE INDEX advisories_by_package ON advisories(package);",
    // 7: signed agent releases published with `vigocli release publish` (the binary is kept
    // under <base>/releases/<sha256>; the .sig text here).
    "CREATE TABLE releases (
        sha256       TEXT PRIMARY KEY,
        version      TEXT NOT NULL,
        target       TEXT NOT NULL,
        size         INTEGER NOT NULL,
        sig          TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        published_by TEXT NOT NULL,
        retired_at   INTEGER
    );
    CREATE INDEX releases_by_version ON releases(version, target);",
    // 8: an API token's name is unique among its owner's active tokens (the local-admin
    // principal's ownerless tokens count as one owner); names used to be unique across owners,
    // so no existing database breaks this.
    "CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens(COALESCE(owner, ''), name)
        WHERE revoked_at IS NULL;",
    // 9: one delivery cursor per audit sink (integrations): the last sequence number the sink
    // has taken, and when it last took something. The audit table itself is the queue.
    "CREATE TABLE sink_cursors (
        name         TEXT PRIMARY KEY,
        last_seq     INTEGER NOT NULL,
        last_success INTEGER
    );",
    // 10: whether a run only looked (noop, or aborted before anything ran): an envoy's state
    // comes from its applied runs (store/fleet.rs). Older rows say so in their report.
    "ALTER TABLE runs ADD COLUMN noop INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET noop = 1 WHERE json_extract(report, '$.noop') = 1;
    CREATE INDEX runs_applied ON runs(envoy_id, noop, received_at, status, bundle_hash);",
    // 11: every published config tree, content-addressed (store/config_history.rs): one row
    // per publish or rollback, its files by name, each text stored once by its SHA-256.
    "CREATE TABLE config_blobs (
        hash TEXT PRIMARY KEY,
        text TEXT NOT NULL
    );
    CREATE TABLE config_revisions (
        rev          INTEGER PRIMARY KEY AUTOINCREMENT,
        content_hash TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        published_by TEXT NOT NULL,
        message      TEXT NOT NULL DEFAULT '',
        rollback_of  INTEGER,
        forced       INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE config_revision_files (
        rev  INTEGER NOT NULL REFERENCES config_revisions(rev),
        path TEXT NOT NULL,
        blob TEXT NOT NULL REFERENCES config_blobs(hash),
        PRIMARY KEY (rev, path)
    );
    CREATE TRIGGER config_revisions_kept BEFORE DELETE ON config_revisions
        BEGIN SELECT RAISE(ABORT, 'config history is kept: DELETE refused'); END;",
    // 12: each envoy's traits as it last sent them (store/traits.rs).
    "CREATE TABLE envoy_traits (
        envoy_id   TEXT PRIMARY KEY REFERENCES envoys(id),
        traits     TEXT NOT NULL,
        digest     TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );",
    // 13: the traits again as SQLite's binary JSON, which `envoys list --where` reads without
    // parsing 10,000 texts per query (store/traits.rs `condition`).
    "ALTER TABLE envoy_traits ADD COLUMN traits_jsonb BLOB;
    UPDATE envoy_traits SET traits_jsonb = jsonb(traits);",
    // 14: ad-hoc tasks and each target envoy's run of one (store/tasks.rs).
    "CREATE TABLE tasks (
        id           TEXT PRIMARY KEY,
        command      TEXT NOT NULL,
        target       TEXT NOT NULL,
        batch_size   INTEGER NOT NULL,
        max_failures INTEGER NOT NULL,
        timeout_secs INTEGER NOT NULL,
        forced       INTEGER NOT NULL,
        created_by   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        stopped      TEXT
    );
    CREATE TABLE task_runs (
        task_id     TEXT NOT NULL REFERENCES tasks(id),
        envoy_id    TEXT NOT NULL,
        envoy_name  TEXT NOT NULL,
        batch       INTEGER NOT NULL,
        state       TEXT NOT NULL,
        exit_code   INTEGER,
        output      TEXT NOT NULL DEFAULT '',
        error       TEXT NOT NULL DEFAULT '',
        duration_ms INTEGER,
        sent_at     INTEGER,
        done_at     INTEGER,
        PRIMARY KEY (task_id, envoy_id)
    );
    CREATE INDEX task_runs_waiting ON task_runs(envoy_id, state);",
    // 15: `tasks::expire` looks runs up by state on every check-in with a part waiting.
    "CREATE INDEX task_runs_state ON task_runs(state, sent_at);",
];
