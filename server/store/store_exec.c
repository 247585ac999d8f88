/* store_exec.c - what a data job does inside the writer's open transaction: a put (guid
 * lookup, publish decision, inference row with its packed labels, image and outbox rows, the
 * labels' postings gathered for the COMMIT), a delete or a thumbnail
 * by guid, and the dispatch to the outbox and meta jobs (store_outbox.c, store_meta.c). Runs on
 * the writer thread only; the job and its inference belong to the writer meanwhile. */
#include "store/store_internal.h"

#include <inttypes.h>
#include <stdio.h>

#include "core/log.h"

/* now: the wall clock (received_ms); age: the age clock (age_ms, what retention compares). */
static er_rc exec_put(store *s, job *j, int64_t now, int64_t age)
{
    sqlite3 *db = s->wdb;
    inference *inf = j->inf;
    sqlite3_stmt *st = s->wst[WSTMT_FIND_GUID];
    inference_publish decision = INFERENCE_PUBLISH_NONE;
    int64_t footprint = (int64_t)inference_footprint(inf);
    er_rc rc = ER_OK;
    int src;
    snprintf(j->res.guid, sizeof j->res.guid, "%s", inf->guid);
    sqlite3_bind_text(st, 1, inf->guid, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        j->res.duplicate = true;
        j->res.seq = sqlite3_column_int64(st, 0);
        j->res.ts = sqlite3_column_int64(st, 1);
        stmt_done(st);
        goto fail; /* rc stays ER_OK: answered with the stored row */
    }
    stmt_done(st);
    if (src != SQLITE_DONE) {
        rc = store__db_error(s, db, src, "looking up guid");
        goto fail;
    }
    /* The decision comes before the insert so it is recorded on the row in the same txn. */
    if (s->outbox) {
        if (!j->decided) {
            j->decision =
                s->policy_fn ? s->policy_fn(s->policy_arg, inf) : INFERENCE_PUBLISH_PENDING;
            j->decided = true;
        }
        decision = j->decision;
        if (decision == INFERENCE_PUBLISH_PENDING) {
            rc = store__outbox_make_room(s, j, footprint, &decision);
            if (rc) goto fail;
        }
    }

    /* the labels go in the row, packed (schema/005_labels.sql); their postings at the COMMIT */
    const void *labels;
    size_t labels_len;
    rc = store__labels_pack(s, inf, &labels, &labels_len);
    if (rc) goto fail;
    st = s->wst[WSTMT_INS_INFERENCE];
    sqlite3_bind_text(st, 1, inf->guid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, inf->ts);
    sqlite3_bind_int64(st, 3, now);
    bind_text(st, 4, inf->device);
    bind_text(st, 5, inf->source);
    sqlite3_bind_text(st, 6, inference_kind_name(inf->kind), -1, SQLITE_STATIC);
    bind_text(st, 7, inf->result_json);
    bind_text(st, 8, inf->timing_json);
    bind_text(st, 9, inf->info_json);
    bind_text(st, 10, inf->top_label);
    sqlite3_bind_double(st, 11, inf->top_score);
    if (inf->has_anomaly)
        sqlite3_bind_double(st, 12, inf->anomaly);
    else
        sqlite3_bind_null(st, 12);
    sqlite3_bind_int(st, 13, inf->model_width);
    sqlite3_bind_int(st, 14, inf->model_height);
    sqlite3_bind_int(st, 15, inf->image.data ? 1 : 0);
    sqlite3_bind_int64(st, 16, footprint);
    sqlite3_bind_int(st, 17, (int)decision);
    sqlite3_bind_int64(st, 18, age);
    sqlite3_bind_blob(st, 19, labels, (int)labels_len, SQLITE_STATIC);
    src = step_once(st);
    if (src != SQLITE_DONE) {
        rc = store__db_error(s, db, src, "inserting inference");
        goto fail;
    }
    int64_t seq = sqlite3_last_insert_rowid(db);

    if (inf->image.data) {
        st = s->wst[WSTMT_INS_IMAGE];
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_text(st, 2, inf->image.mime, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, inf->image.width);
        sqlite3_bind_int(st, 4, inf->image.height);
        sqlite3_bind_blob64(st, 5, inf->image.data, inf->image.len, SQLITE_STATIC);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = store__db_error(s, db, src, "inserting image");
            goto fail;
        }
    }
    if (decision == INFERENCE_PUBLISH_PENDING) {
        st = s->wst[WSTMT_INS_OUTBOX];
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, footprint);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = store__db_error(s, db, src, "inserting outbox row");
            goto fail;
        }
    }
    if (j->dropped || j->rejected) {
        st = s->wst[WSTMT_OB_TALLY];
        sqlite3_bind_int64(st, 1, j->dropped);
        sqlite3_bind_int64(st, 2, j->rejected);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = store__db_error(s, db, src, "counting outbox drops");
            goto fail;
        }
    }
    /* counted only once every row is in: a failed put adds nothing */
    rc = store__posts_add(s, inf, seq);
    if (rc) goto fail;
    s->cnt_add.rows++;
    s->cnt_add.bytes += footprint;
    s->cnt_add.images += inf->image.data ? 1 : 0;
    if (decision == INFERENCE_PUBLISH_PENDING) {
        s->cnt_add.outbox++;
        s->cnt_add.outbox_bytes += footprint;
    }
    inf->publish = decision;
    j->res.seq = seq;
    j->res.ts = inf->ts;
fail:
    if (rc) log_error("store", "put %s failed: %s", inf->guid, er_rc_name(rc));
    return rc;
}

static er_rc exec_guid_change(store *s, job *j)
{
    sqlite3_stmt *st = s->wst[j->kind == JOB_DELETE ? WSTMT_DEL_GUID : WSTMT_SET_THUMB];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, j->guid, -1, SQLITE_STATIC);
    if (j->kind == JOB_THUMB) sqlite3_bind_blob64(st, 2, j->data, j->len, SQLITE_STATIC);
    int src = step_once(st);
    if (src != SQLITE_DONE) {
        rc = store__db_error(s, s->wdb, src,
                             j->kind == JOB_DELETE ? "deleting" : "caching thumbnail");
        goto fail;
    }
    if (sqlite3_changes(s->wdb) == 0) rc = ER_NOTFOUND;
fail:
    return rc;
}

er_rc store__exec_data_job(store *s, job *j, int64_t now, int64_t age)
{
    switch (j->kind) {
    case JOB_PUT:
        return exec_put(s, j, now, age);
    case JOB_DELETE:
    case JOB_THUMB:
        return exec_guid_change(s, j);
    case JOB_ACK:
        return store__exec_ack(s, j);
    case JOB_FAIL:
        return store__exec_fail(s, j, now);
    case JOB_META:
        return store__exec_meta(s, j);
    default:
        return ER_INTERNAL;
    }
}

er_rc store__counters_flush(store *s)
{
    sqlite3_stmt *st = s->wst[WSTMT_COUNTERS_ADD];
    er_rc rc = ER_OK;
    if (s->cnt_add.rows == 0 && s->cnt_add.outbox == 0) goto fail;
    sqlite3_bind_int64(st, 1, s->cnt_add.rows);
    sqlite3_bind_int64(st, 2, s->cnt_add.bytes);
    sqlite3_bind_int64(st, 3, s->cnt_add.images);
    sqlite3_bind_int64(st, 4, s->cnt_add.outbox);
    sqlite3_bind_int64(st, 5, s->cnt_add.outbox_bytes);
    int src = step_once(st);
    if (src != SQLITE_DONE) {
        rc = store__db_error(s, s->wdb, src, "updating counters");
        goto fail;
    }
    memset(&s->cnt_add, 0, sizeof s->cnt_add);
fail:
    return rc;
}

er_rc store__exec_max_pages(store *s, int64_t pages)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count=%" PRId64, pages);
    int src = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? ER_OK : store__db_error(s, s->wdb, src, "max_page_count");
}
