/* store_sql.c - the text of every statement the store runs, by connection: the writer's
 * (indexed by WSTMT_*) and each reader's (RSTMT_*). store_db.c prepares them once per connection;
 * the column order of INF_COLS (store_internal.h) is what store_read.c decodes. */
#include "store/store_internal.h"

#define RET_VACUUM_PAGES "2048" /* pages a retention pass gives back */

const char *const store__writer_sql[WSTMT__N] = {
    [WSTMT_BEGIN] = "BEGIN IMMEDIATE",
    [WSTMT_COMMIT] = "COMMIT",
    [WSTMT_ROLLBACK] = "ROLLBACK",
    [WSTMT_SAVEPOINT] = "SAVEPOINT job",
    [WSTMT_RELEASE] = "RELEASE job",
    [WSTMT_ROLLBACK_TO] = "ROLLBACK TO job",
    [WSTMT_FIND_GUID] = "SELECT seq, ts FROM inference WHERE guid = ?1",
    [WSTMT_INS_INFERENCE] =
        "INSERT INTO inference (guid, ts, received_ms, device, source, kind, result, timing, info,"
        " top_label, top_score, anomaly, model_width, model_height, has_image, bytes, publish,"
        " age_ms, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
        " ?16, ?17, ?18, ?19)",
    [WSTMT_INS_IMAGE] =
        "INSERT INTO image (seq, mime, width, height, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    [WSTMT_INS_OUTBOX] = "INSERT INTO outbox (seq, created_ms, bytes) VALUES (?1, ?2, ?3)",
    [WSTMT_DEL_GUID] = "DELETE FROM inference WHERE guid = ?1",
    [WSTMT_SET_THUMB] = "UPDATE image SET thumbnail = ?2"
                        " WHERE seq = (SELECT seq FROM inference WHERE guid = ?1)",
    [WSTMT_COUNTERS] = "SELECT rows, bytes FROM counters WHERE id = 1",
    /* Only pending outbox rows protect an inference: a dead letter is an ordinary cached row
     * for retention (see store_outbox_dead). */
    /* Age is the store's age clock at commit (store_age.c), neither the sender's ts (a runner
     * without a set clock sends ts from boot) nor the wall clock (it steps). age_ms grows with
     * seq, so the oldest are a prefix by seq. */
    [WSTMT_RET_AGE] = "SELECT i.seq, i.age_ms,"
                      " EXISTS (SELECT 1 FROM outbox o WHERE o.seq = i.seq AND o.state = 0)"
                      " FROM inference i WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [WSTMT_RET_OLD] = "SELECT i.seq, i.bytes,"
                      " EXISTS (SELECT 1 FROM outbox o WHERE o.seq = i.seq AND o.state = 0)"
                      " FROM inference i WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    /* The NOT EXISTS re-check makes "never delete a row with an outbox entry" hold even if
     * another connection added one between the scan and the delete. */
    [WSTMT_DEL_SEQ] = "DELETE FROM inference WHERE seq = ?1"
                      " AND NOT EXISTS (SELECT 1 FROM outbox WHERE seq = ?1 AND state = 0)",
    [WSTMT_VACUUM] = "PRAGMA incremental_vacuum(" RET_VACUUM_PAGES ")",
    [WSTMT_VACUUM_ALL] = "PRAGMA incremental_vacuum",
    [WSTMT_OB_COUNTERS] = "SELECT outbox, outbox_bytes FROM counters WHERE id = 1",
    /* INDEXED BY: the partial index of pending rows, so dead rows are never walked over. */
    [WSTMT_OB_OLDEST] = "SELECT seq, bytes FROM outbox INDEXED BY outbox_pending WHERE state = 0"
                        " ORDER BY seq LIMIT ?1",
    [WSTMT_OB_DELETE] = "DELETE FROM outbox WHERE seq = ?1",
    [WSTMT_SET_PUBLISH] = "UPDATE inference SET publish = ?2 WHERE seq = ?1",
    /* acks: one statement per run of consecutive seqs rather than per row */
    [WSTMT_OB_DELETE_RANGE] = "DELETE FROM outbox WHERE seq BETWEEN ?1 AND ?2",
    [WSTMT_SET_PUBLISH_RANGE] = "UPDATE inference SET publish = ?3 WHERE seq BETWEEN ?1 AND ?2",
    [WSTMT_OB_TALLY] = "UPDATE counters SET outbox_dropped = outbox_dropped + ?1,"
                       " outbox_rejected = outbox_rejected + ?2 WHERE id = 1",
    [WSTMT_OB_FAIL] = "UPDATE outbox SET attempts = attempts + 1, last_error = ?2"
                      " WHERE seq = ?1 AND state = 0 RETURNING attempts",
    [WSTMT_OB_KILL] = "UPDATE outbox SET state = 1, dead_ms = ?2 WHERE seq = ?1",
    [WSTMT_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [WSTMT_CLEAR_SCAN] = "SELECT i.seq,"
                         " EXISTS (SELECT 1 FROM outbox o WHERE o.seq = i.seq AND o.state = 0)"
                         " FROM inference i WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [WSTMT_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [WSTMT_NEWEST_AGE] = "SELECT age_ms FROM inference ORDER BY seq DESC LIMIT 1",
    [WSTMT_INS_POST] = "INSERT INTO label_post (label, seq0, seq1, data) VALUES (?1, ?2, ?3, ?4)",
    /* the seq1 index from its start; each row's range one probe of the primary key */
    [WSTMT_TRIM_POSTS] = "DELETE FROM label_post WHERE seq1 <= ?1 AND NOT EXISTS (SELECT 1 FROM"
                         " inference i WHERE i.seq BETWEEN label_post.seq0 AND label_post.seq1)",
    [WSTMT_COUNTERS_ADD] = "UPDATE counters SET rows = rows + ?1, bytes = bytes + ?2,"
                           " images = images + ?3, outbox = outbox + ?4,"
                           " outbox_bytes = outbox_bytes + ?5 WHERE id = 1",
};

/* Newest first by seq; each optional filter is `?n IS NULL OR ...` so one static statement
 * serves every combination. */
#define SQL_LIST                                                                                   \
    "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"                      \
    " WHERE i.seq < ?1 AND (?2 IS NULL OR i.source = ?2) AND (?3 IS NULL OR i.top_score >= ?3)"    \
    " AND (?4 IS NULL OR i.ts >= ?4) AND (?5 IS NULL OR i.ts < ?5)"                                \
    " ORDER BY i.seq DESC LIMIT ?6"

/* With a label, for the inferences written before 005 (seq < labels_from; newer ones are read
 * from label_post, store_read.c): a range scan of the covering (label, seq, score, ts) index
 * drives the query (CROSS JOIN pins that loop order), so "newest N with label X" never scans. */
#define SQL_LIST_LABEL                                                                             \
    "SELECT " INF_COLS " FROM label_score l CROSS JOIN inference i ON i.seq = l.seq"               \
    " LEFT JOIN image m ON m.seq = i.seq"                                                          \
    " WHERE l.label = ?7 AND l.seq < ?1 AND (?2 IS NULL OR i.source = ?2)"                         \
    " AND (?3 IS NULL OR l.score >= ?3) AND (?4 IS NULL OR l.ts >= ?4)"                            \
    " AND (?5 IS NULL OR l.ts < ?5) ORDER BY l.seq DESC LIMIT ?6"

/* With a label, since 005: a newest-first walk of the label's label_post rows from the cursor
 * (a primary-key range), then the entries' inferences by their primary key, up to PROBE_SEQS
 * in one statement. */
#define SQL_POST_SCAN                                                                              \
    "SELECT seq0, seq1, data FROM label_post WHERE label = ?1 AND seq0 < ?2 ORDER BY seq0 DESC"
#define Q4 "?,?,?,?"
#define SQL_BY_SEQS                                                                                \
    "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"                      \
    " WHERE i.seq IN (?2," Q4 "," Q4 "," Q4 "," Q4 "," Q4 "," Q4 "," Q4 ",?,?,?)"                  \
    " AND (?1 IS NULL OR i.source = ?1) ORDER BY i.seq DESC"
_Static_assert(PROBE_SEQS == 32, "SQL_BY_SEQS has ?2 .. ?33");
#define SQL_BY_RANGE                                                                               \
    "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"                      \
    " WHERE i.seq BETWEEN ?2 AND ?3 AND (?1 IS NULL OR i.source = ?1) ORDER BY i.seq DESC"

const char *const store__reader_sql[RSTMT__N] = {
    [RSTMT_LIST] = SQL_LIST,
    [RSTMT_LIST_LABEL] = SQL_LIST_LABEL,
    [RSTMT_GET] = "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"
                  " WHERE i.guid = ?1",
    [RSTMT_GET_LABELS] = "SELECT label, score FROM label_score WHERE seq = ?1 ORDER BY label",
    [RSTMT_IMAGE] = "SELECT m.mime, m.width, m.height, m.data FROM inference i"
                    " JOIN image m ON m.seq = i.seq WHERE i.guid = ?1",
    [RSTMT_THUMB] = "SELECT m.thumbnail FROM inference i JOIN image m ON m.seq = i.seq"
                    " WHERE i.guid = ?1 AND m.thumbnail IS NOT NULL",
    /* The ts index finds the range (pinned: with a source the planner might take
     * inference_source and read every row of that source); store_labels.c groups each row's
     * labels (packed, or before 005 a prefix lookup of label_score by seq) and its top class. */
    [RSTMT_STATS] = "SELECT i.seq, (i.ts / ?3) * ?3, i.labels, i.top_label, i.top_score"
                    " FROM inference i INDEXED BY inference_ts WHERE i.ts >= ?1 AND i.ts < ?2"
                    " AND (?4 IS NULL OR i.source = ?4) AND (?5 <= 0 OR i.top_score >= ?5)",
    [RSTMT_COUNTERS] = "SELECT rows, bytes, images, outbox FROM counters WHERE id = 1",
    /* Separate sub-selects so each min/max is one index probe. */
    [RSTMT_EDGES] = "SELECT (SELECT min(ts) FROM inference), (SELECT max(ts) FROM inference),"
                    " (SELECT max(seq) FROM inference)",
    [RSTMT_PAGES] = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    [RSTMT_FOREACH] = "SELECT " INF_COLS ", m.data FROM inference i LEFT JOIN image m"
                      " ON m.seq = i.seq WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [RSTMT_EXPLAIN_LIST] = "EXPLAIN QUERY PLAN " SQL_LIST,
    [RSTMT_EXPLAIN_LABEL] = "EXPLAIN QUERY PLAN " SQL_LIST_LABEL,
    /* The drain: a range scan of the pending index in seq order (no sort, no COUNT), each row
     * then one primary-key probe into inference and image. CROSS JOIN pins that loop order. */
    [RSTMT_OB_FETCH] = "SELECT " INF_COLS ", m.data FROM outbox o INDEXED BY outbox_pending"
                       " CROSS JOIN inference i ON i.seq = o.seq LEFT JOIN image m ON m.seq = o.seq"
                       " WHERE o.state = 0 AND o.seq > ?1 ORDER BY o.seq LIMIT ?2",
    /* The same without the image bytes (length(m.data) reads no overflow page). */
    [RSTMT_OB_FETCH_META] = "SELECT " INF_COLS " FROM outbox o INDEXED BY outbox_pending"
                            " CROSS JOIN inference i ON i.seq = o.seq LEFT JOIN image m ON"
                            " m.seq = o.seq WHERE o.state = 0 AND o.seq > ?1 ORDER BY o.seq"
                            " LIMIT ?2",
    [RSTMT_OB_DEAD] = "SELECT " INF_COLS " FROM outbox o INDEXED BY outbox_dead"
                      " CROSS JOIN inference i ON i.seq = o.seq LEFT JOIN image m ON m.seq = o.seq"
                      " WHERE o.state = 1 AND o.seq < ?1 ORDER BY o.seq DESC LIMIT ?2",
    [RSTMT_OB_COUNTERS] = "SELECT outbox, outbox_bytes, outbox_dead FROM counters WHERE id = 1",
    /* The live stream's catch-up: a primary-key range, oldest first. */
    [RSTMT_AFTER] = "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"
                    " WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [RSTMT_OB_OLDEST] = "SELECT i.ts FROM outbox o INDEXED BY outbox_pending"
                        " CROSS JOIN inference i ON i.seq = o.seq WHERE o.state = 0"
                        " ORDER BY o.seq LIMIT 1",
    [RSTMT_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [RSTMT_POST_SCAN] = SQL_POST_SCAN,
    [RSTMT_BY_SEQS] = SQL_BY_SEQS,
    [RSTMT_BY_RANGE] = SQL_BY_RANGE,
    [RSTMT_EXPLAIN_POST] = "EXPLAIN QUERY PLAN " SQL_POST_SCAN,
    [RSTMT_EXPLAIN_BY_SEQS] = "EXPLAIN QUERY PLAN " SQL_BY_SEQS,
};
