-- 004_ingest.sql - a cheaper put (issue 13): most of the writer's cost per inference was SQLite
-- work per row that the schema asked for.
--
-- 1. Counters: the writer counts what a batch inserts and adds it to `counters` once per
-- transaction (store_exec.c, store_writer.c) instead of an AFTER INSERT trigger per row: a
-- trigger costs a sub-program and a statement journal for every inference and outbox insert.
-- Deletes and outbox state changes still update `counters` by trigger (001, 002), so retention,
-- deletes and acks are unchanged. Anything that inserts rows must now add them to `counters` in
-- the same transaction.
DROP TRIGGER inference_count_ins;
DROP TRIGGER image_count_ins;
DROP TRIGGER outbox_count_ins;

-- 2. The cascade from an inference to its image, labels and outbox row is this trigger, and
-- the writer connection runs with foreign_keys=OFF (store_db.c): with foreign keys on, every
-- label row inserted probes `inference`, and an INSERT of several label rows (one statement per
-- inference, store_exec.c) needs a statement journal to undo a violation. The REFERENCES
-- clauses stay as documentation; `PRAGMA foreign_key_check` still holds.
CREATE TRIGGER inference_cascade AFTER DELETE ON inference BEGIN
    DELETE FROM label_score WHERE seq = OLD.seq;
    DELETE FROM image WHERE seq = OLD.seq;
    DELETE FROM outbox WHERE seq = OLD.seq;
END;
