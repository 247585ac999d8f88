-- 005_labels.sql - labels packed (issue 13): the five `label_score` rows of an inference, with
-- their (label, seq, score, ts) index appended to in the middle of the tree, were more than half
-- of the writer's work per put. From this version on:
--
-- 1. An inference's labels are packed in its own row (inference.labels, format in
--    server/store/store_pack.h), written by the inference INSERT itself: reads by id, pages and
--    stats decode the column. NULL on rows written before this version: theirs stay in
--    label_score (read there; the cascade trigger of 004 still deletes them).
-- 2. "Newest N with label X" reads label_post: one row per label per commit batch, its entries
--    (seq, score, ts) packed in seq order. A newest-first scan of a label is a range of the
--    primary key; retention (and clear_cache) deletes the rows whose inferences are all gone,
--    from the seq1 index up to where it examined every row. A single delete leaves its entries
--    behind: seq is AUTOINCREMENT, never reused, so a stale entry points at nothing and the read
--    skips it.
-- 3. meta 'labels_packed_from' is the first seq written this way (the watermark W): below it a
--    label read continues in label_score, unchanged. Nothing is rewritten here, so this migration
--    takes the same time at 1M rows as on an empty file.
ALTER TABLE inference ADD COLUMN labels BLOB;

CREATE TABLE label_post (
    label TEXT    NOT NULL,
    seq0  INTEGER NOT NULL,   -- first seq of the entries
    seq1  INTEGER NOT NULL,   -- last seq of the entries
    data  BLOB    NOT NULL,
    PRIMARY KEY (label, seq0)
) WITHOUT ROWID;
CREATE INDEX label_post_seq1 ON label_post(seq1);

INSERT INTO meta (key, value) VALUES ('labels_packed_from',
    coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'inference'), 0) + 1);
