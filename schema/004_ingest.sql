-- 004_ingest.sql - a cheaper put (issue 13): the writer's cost per inference was mostly SQLite
-- work per row that the schema asked for.
--
-- 1. Counters: the writer counts what a batch inserts and adds it to `counters` once per
-- transaction (store_exec.c, store_writer.c) instead of an AFTER INSERT trigger per row: a
-- trigger costs a sub-program and a statement journal for every inference and outbox insert.
-- Deletes and outbox state changes still update `counters` by trigger (001, 002), so retention,
-- deletes and acks are unchanged. Anything that inserts rows itself must now add them to
-- `counters` in the same transaction.
DROP TRIGGER inference_count_ins;
DROP TRIGGER image_count_ins;
DROP TRIGGER outbox_count_ins;

-- Recounted once, so a database that was written by hand (tests, tools) starts consistent.
UPDATE counters SET
    rows = (SELECT count(*) FROM inference),
    bytes = (SELECT coalesce(sum(bytes), 0) FROM inference),
    images = (SELECT count(*) FROM image),
    outbox = (SELECT count(*) FROM outbox WHERE state = 0),
    outbox_bytes = (SELECT coalesce(sum(bytes), 0) FROM outbox WHERE state = 0),
    outbox_dead = (SELECT count(*) FROM outbox WHERE state = 1)
WHERE id = 1;

-- 2. label_score without its foreign key and with a smaller label index. The foreign key cost a
-- probe of `inference` for every label row inserted; its cascade is now a trigger (a row is
-- still never left behind by its inference). The index keeps (label, seq) only: its entries
-- are inserted in the middle of the B-tree (one place per label), where every full page is
-- split and rebalanced, so smaller entries mean fewer splits; a label query reads score and ts
-- from the table by primary key for the rows the index range gives. The writer inserts an
-- inference's labels in one statement (`INSERT OR ROLLBACK`: labels are unique per inference
-- by construction, so no statement journal is needed).
CREATE TABLE label_score_new (
    seq   INTEGER NOT NULL,
    label TEXT    NOT NULL,
    ts    INTEGER NOT NULL,
    score REAL    NOT NULL,
    PRIMARY KEY (seq, label)
) WITHOUT ROWID;
INSERT INTO label_score_new (seq, label, ts, score) SELECT seq, label, ts, score FROM label_score;
DROP TABLE label_score;
ALTER TABLE label_score_new RENAME TO label_score;
CREATE INDEX label_score_label ON label_score(label, seq);
CREATE TRIGGER label_score_del AFTER DELETE ON inference BEGIN
    DELETE FROM label_score WHERE seq = OLD.seq;
END;
