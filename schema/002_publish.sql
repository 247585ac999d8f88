-- 002_publish.sql - the forwarder's side: the publish decision on each inference, and outbox
-- rows that carry their size, their last error and a dead-letter state.
--
-- inference.publish is an inference_publish value (0 none, 1 pending, 2 published, 3 filtered,
-- 4 skipped, 5 dropped, 6 dead). outbox.state is 0 pending or 1 dead (dead_ms set).
-- Counters for the outbox (pending rows, their bytes, dead rows) are kept by triggers so that
-- start-up and health checks never COUNT(*) a queue of a million rows.
ALTER TABLE inference ADD COLUMN publish INTEGER NOT NULL DEFAULT 0;

ALTER TABLE outbox ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0; -- accounted size (outbox_max_bytes)
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN dead_ms INTEGER;                  -- NULL unless dead

-- Pending rows in seq order (the drain and "oldest pending"), dead rows newest first (the
-- dead-letter list); partial, so neither walks over the other kind.
CREATE INDEX outbox_pending ON outbox(seq) WHERE state = 0;
CREATE INDEX outbox_dead ON outbox(seq) WHERE state = 1;

-- counters.outbox now means pending rows only (dead rows are counted apart).
ALTER TABLE counters ADD COLUMN outbox_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN outbox_dead INTEGER NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN outbox_dropped INTEGER NOT NULL DEFAULT 0;  -- lifetime total
ALTER TABLE counters ADD COLUMN outbox_rejected INTEGER NOT NULL DEFAULT 0; -- lifetime total

-- Rows queued by 001 were all pending: give them their size and their decision.
UPDATE outbox SET bytes = coalesce((SELECT i.bytes FROM inference i WHERE i.seq = outbox.seq), 0);
UPDATE inference SET publish = 1 WHERE seq IN (SELECT seq FROM outbox);

DROP TRIGGER outbox_count_ins;
DROP TRIGGER outbox_count_del;
CREATE TRIGGER outbox_count_ins AFTER INSERT ON outbox BEGIN
    UPDATE counters SET
        outbox = outbox + (NEW.state = 0),
        outbox_bytes = outbox_bytes + (CASE WHEN NEW.state = 0 THEN NEW.bytes ELSE 0 END),
        outbox_dead = outbox_dead + (NEW.state = 1)
    WHERE id = 1;
END;
CREATE TRIGGER outbox_count_del AFTER DELETE ON outbox BEGIN
    UPDATE counters SET
        outbox = outbox - (OLD.state = 0),
        outbox_bytes = outbox_bytes - (CASE WHEN OLD.state = 0 THEN OLD.bytes ELSE 0 END),
        outbox_dead = outbox_dead - (OLD.state = 1)
    WHERE id = 1;
END;
CREATE TRIGGER outbox_count_upd AFTER UPDATE OF state, bytes ON outbox BEGIN
    UPDATE counters SET
        outbox = outbox - (OLD.state = 0) + (NEW.state = 0),
        outbox_bytes = outbox_bytes - (CASE WHEN OLD.state = 0 THEN OLD.bytes ELSE 0 END)
                                    + (CASE WHEN NEW.state = 0 THEN NEW.bytes ELSE 0 END),
        outbox_dead = outbox_dead - (OLD.state = 1) + (NEW.state = 1)
    WHERE id = 1;
END;

UPDATE counters SET
    outbox = (SELECT count(*) FROM outbox WHERE state = 0),
    outbox_bytes = (SELECT coalesce(sum(bytes), 0) FROM outbox WHERE state = 0),
    outbox_dead = (SELECT count(*) FROM outbox WHERE state = 1)
WHERE id = 1;
