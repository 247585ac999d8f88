-- 001_init.sql - the cache: inferences, images, per-label scores, outbox, counters.
-- seq is AUTOINCREMENT so a number is never reused, even after the newest row is deleted:
-- consumers order by seq and deduplicate by id (guid).
CREATE TABLE inference (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    guid         TEXT    NOT NULL UNIQUE,
    ts           INTEGER NOT NULL,            -- epoch ms of the inference
    received_ms  INTEGER NOT NULL,            -- epoch ms the relay committed it
    device       TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,            -- classification|object-detection|...|empty
    result       TEXT    NOT NULL,            -- canonical Edge Impulse result, JSON
    timing       TEXT,                        -- JSON or NULL
    info         TEXT,                        -- JSON or NULL
    top_label    TEXT,
    top_score    REAL    NOT NULL DEFAULT 0,
    anomaly      REAL,
    model_width  INTEGER NOT NULL DEFAULT 0,
    model_height INTEGER NOT NULL DEFAULT 0,
    has_image    INTEGER NOT NULL DEFAULT 0,
    bytes        INTEGER NOT NULL             -- accounted footprint, for cache_max_bytes
);
CREATE INDEX inference_ts ON inference(ts);
CREATE INDEX inference_source ON inference(source, seq);

CREATE TABLE image (
    seq       INTEGER PRIMARY KEY REFERENCES inference(seq) ON DELETE CASCADE,
    mime      TEXT    NOT NULL,
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    thumbnail BLOB                            -- JPEG, made on first request
);

-- One row per label of an inference with that label's best score, so "newest N with label X"
-- and "score >= s" are index range scans rather than JSON scans. Clustered by seq, so an insert
-- appends at the end of the table and retention deletes a contiguous range; the covering
-- (label, seq) index serves the label queries without touching the table.
CREATE TABLE label_score (
    seq   INTEGER NOT NULL REFERENCES inference(seq) ON DELETE CASCADE,
    label TEXT    NOT NULL,
    ts    INTEGER NOT NULL,
    score REAL    NOT NULL,
    PRIMARY KEY (seq, label)
) WITHOUT ROWID;
CREATE INDEX label_score_label ON label_score(label, seq, score, ts);

-- Messages waiting for the forwarder, written in the same transaction as their inference.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY REFERENCES inference(seq) ON DELETE CASCADE,
    state      INTEGER NOT NULL DEFAULT 0,    -- 0 pending (later issues add more states)
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);

-- Running totals kept by triggers, so health and retention never COUNT(*) a large table.
CREATE TABLE counters (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    rows   INTEGER NOT NULL,
    bytes  INTEGER NOT NULL,
    images INTEGER NOT NULL,
    outbox INTEGER NOT NULL
);
INSERT INTO counters VALUES (1, 0, 0, 0, 0);

CREATE TRIGGER inference_count_ins AFTER INSERT ON inference BEGIN
    UPDATE counters SET rows = rows + 1, bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER inference_count_del AFTER DELETE ON inference BEGIN
    UPDATE counters SET rows = rows - 1, bytes = bytes - OLD.bytes WHERE id = 1;
END;
CREATE TRIGGER image_count_ins AFTER INSERT ON image BEGIN
    UPDATE counters SET images = images + 1 WHERE id = 1;
END;
CREATE TRIGGER image_count_del AFTER DELETE ON image BEGIN
    UPDATE counters SET images = images - 1 WHERE id = 1;
END;
CREATE TRIGGER outbox_count_ins AFTER INSERT ON outbox BEGIN
    UPDATE counters SET outbox = outbox + 1 WHERE id = 1;
END;
CREATE TRIGGER outbox_count_del AFTER DELETE ON outbox BEGIN
    UPDATE counters SET outbox = outbox - 1 WHERE id = 1;
END;

-- Small key/value state that must survive restarts (settings changed by command, ids).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
