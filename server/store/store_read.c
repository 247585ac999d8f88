/* store_read.c - the reads, on any thread, each on a reader connection borrowed from the pool
 * for the call: list (keyset pages, filters; with a label the postings since 005, then the old
 * label_score rows below the watermark), list_after, get, image, thumbnail, info, foreach, query
 * plans, and the row decoding and paging the outbox reads share. What a read
 * returns is the caller's (see store.h for each free function). */
#include "store/store_internal.h"

#include "store/store_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FOREACH_PAGE 32

/* Rebuilds an inference from the INF_COLS columns of st (image bytes not included). */
static er_rc row_to_inference(sqlite3_stmt *st, inference **out)
{
    er_rc rc = ER_NOMEM;
    inference *inf = inference_create();
    if (!inf) goto fail;
    inf->seq = sqlite3_column_int64(st, 0);
    snprintf(inf->guid, sizeof inf->guid, "%s", (const char *)sqlite3_column_text(st, 1));
    inf->ts = sqlite3_column_int64(st, 2);
    inf->device = col_strdup(st, 3);
    inf->source = col_strdup(st, 4);
    const char *kind = (const char *)sqlite3_column_text(st, 5);
    int k = kind ? inference_kind_parse(kind) : -1;
    inf->kind = k < 0 ? INFERENCE_EMPTY : (inference_kind)k;
    inf->result_json = col_strdup(st, 6);
    if (!inf->device || !inf->source || !inf->result_json) goto fail;
    if (sqlite3_column_type(st, 7) != SQLITE_NULL && !(inf->timing_json = col_strdup(st, 7)))
        goto fail;
    if (sqlite3_column_type(st, 8) != SQLITE_NULL && !(inf->info_json = col_strdup(st, 8)))
        goto fail;
    if (sqlite3_column_type(st, 9) != SQLITE_NULL && !(inf->top_label = col_strdup(st, 9)))
        goto fail;
    inf->top_score = sqlite3_column_double(st, 10);
    inf->has_anomaly = sqlite3_column_type(st, 11) != SQLITE_NULL;
    inf->anomaly = inf->has_anomaly ? sqlite3_column_double(st, 11) : 0;
    inf->model_width = sqlite3_column_int(st, 12);
    inf->model_height = sqlite3_column_int(st, 13);
    if (sqlite3_column_type(st, 15) != SQLITE_NULL) {
        const char *mime = (const char *)sqlite3_column_text(st, 15);
        snprintf(inf->image.mime, sizeof inf->image.mime, "%s", mime ? mime : "");
        inf->image.width = sqlite3_column_int(st, 16);
        inf->image.height = sqlite3_column_int(st, 17);
        inf->image.len = (size_t)sqlite3_column_int64(st, 18);
    }
    inf->publish = (inference_publish)sqlite3_column_int(st, 19);
    *out = inf;
    inf = NULL;
    rc = ER_OK;
fail:
    inference_destroy(inf);
    return rc;
}

/* What a row read holds, against page_max_bytes: image bytes only when they were read. */
static size_t row_bytes(const inference *inf)
{
    size_t n = inference_footprint(inf);
    return inf->image.data ? n : n - inf->image.len;
}

/* Whether a page of n rows holding bytes must end before the next row: it is full, or past
 * the byte bound (a page always holds one row, so a big row still moves the cursor). */
static bool page_ends(size_t max_bytes, size_t n, size_t limit, size_t bytes)
{
    return n == limit || (n > 0 && bytes >= max_bytes);
}

/* Copies the image bytes of column COL_DATA (if not NULL) into inf. */
static er_rc copy_image_data(sqlite3_stmt *st, inference *inf)
{
    if (sqlite3_column_type(st, COL_DATA) == SQLITE_NULL) return ER_OK;
    size_t len = (size_t)sqlite3_column_bytes(st, COL_DATA);
    const void *blob = sqlite3_column_blob(st, COL_DATA);
    inf->image.data = malloc(len ? len : 1);
    if (!inf->image.data) return ER_NOMEM;
    if (len) memcpy(inf->image.data, blob, len);
    inf->image.len = len;
    return ER_OK;
}

/* One page of INF_COLS rows from statement which (?1 cursor, ?2 limit + 1: the extra row sets
 * next_seq), with image bytes (PAGE_DATA) and labels (PAGE_LABELS) as asked. */
er_rc store__read_page(store *s, int which, int64_t cursor, int limit, unsigned what,
                       size_t max_bytes, store_page *out)
{
    if (!max_bytes || max_bytes > s->page_max_bytes) max_bytes = s->page_max_bytes;
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[which];
    er_rc rc = ER_OK;
    int src;
    size_t bytes = 0;
    out->items = calloc((size_t)limit, sizeof *out->items);
    if (!out->items) {
        rc = ER_NOMEM;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, cursor);
    sqlite3_bind_int(st, 2, limit + 1);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (page_ends(max_bytes, out->n, (size_t)limit, bytes)) {
            out->next_seq = out->items[out->n - 1]->seq;
            src = SQLITE_DONE;
            break;
        }
        rc = row_to_inference(st, &out->items[out->n]);
        if (rc) goto fail;
        inference *inf = out->items[out->n++];
        /* labels with their row (same read transaction), so they count against the bound */
        if (((what & PAGE_DATA) && (rc = copy_image_data(st, inf))) ||
            ((what & PAGE_LABELS) && (rc = store__read_labels(r, st, COL_LABELS, inf))))
            goto fail;
        bytes += row_bytes(inf);
    }
    if (src != SQLITE_DONE) rc = store__db_error(s, r->db, src, "reading inferences");
fail:
    stmt_done(st);
    store__reader_put(s, r);
    if (rc) store_page_free(out);
    return rc;
}

er_rc store__read_row(reader *r, int which, int64_t *vals, int n)
{
    sqlite3_stmt *st = r->st[which];
    er_rc rc = ER_OK;
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store__db_error(r->owner, r->db, src, "reading store info");
        goto fail;
    }
    for (int i = 0; i < n; i++)
        vals[i] = sqlite3_column_int64(st, i);
fail:
    stmt_done(st);
    return rc;
}

/* A list page being filled, newest first, until its limit or byte bound. */
typedef struct page_fill {
    store_page *out;
    int limit;
    size_t max_bytes, bytes;
    bool done; /* full: the row that came next set next_seq */
} page_fill;

/* Takes the row st is on, or, once the page is full, lets it set next_seq only. */
static er_rc page_take(page_fill *pf, sqlite3_stmt *st)
{
    store_page *out = pf->out;
    if (page_ends(pf->max_bytes, out->n, (size_t)pf->limit, pf->bytes)) {
        out->next_seq = out->items[out->n - 1]->seq;
        pf->done = true;
        return ER_OK;
    }
    er_rc rc = row_to_inference(st, &out->items[out->n]);
    if (rc) return rc;
    pf->bytes += row_bytes(out->items[out->n++]);
    return ER_OK;
}

/* Takes the rows of the bound statement st until it ends or the page is done; resets st. */
static er_rc page_fill_rows(store *s, reader *r, sqlite3_stmt *st, page_fill *pf)
{
    er_rc rc = ER_OK;
    int src = SQLITE_DONE;
    while (!pf->done && (src = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = page_take(pf, st))) goto fail;
    if (!pf->done && src != SQLITE_DONE) rc = store__db_error(s, r->db, src, "listing inferences");
fail:
    stmt_done(st);
    return rc;
}

/* Probes the candidate seqs cand[0..n) (newest first) in one statement, which returns the ones
 * that still exist and pass the source filter, newest first: one statement and one pair of
 * cursors for up to PROBE_SEQS entries instead of one per entry. Dense candidates (a label on
 * most rows) are read as their seq range with the others skipped here: cheaper than the IN
 * list's ephemeral table when at most about every other row of the range is skipped. */
static er_rc probe_seqs(store *s, reader *r, const store_filter *f, const int64_t *cand, size_t n,
                        page_fill *pf)
{
    sqlite3_stmt *st;
    er_rc rc = ER_OK;
    int src = SQLITE_DONE;
    if ((uint64_t)(cand[0] - cand[n - 1]) >= 2 * (uint64_t)n) {
        st = r->st[RSTMT_BY_SEQS];
        bind_text(st, 1, f->source);
        for (size_t i = 0; i < n; i++) /* the rest stay NULL: they match nothing */
            sqlite3_bind_int64(st, 2 + (int)i, cand[i]);
        return page_fill_rows(s, r, st, pf);
    }
    st = r->st[RSTMT_BY_RANGE];
    bind_text(st, 1, f->source);
    sqlite3_bind_int64(st, 2, cand[n - 1]);
    sqlite3_bind_int64(st, 3, cand[0]);
    size_t k = 0;
    while (!pf->done && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        while (k < n && cand[k] > seq)
            k++;
        if (k < n && cand[k] == seq && (rc = page_take(pf, st))) goto fail;
    }
    if (!pf->done && src != SQLITE_DONE) rc = store__db_error(s, r->db, src, "listing inferences");
fail:
    stmt_done(st);
    return rc;
}

/* The label's postings (inferences since 005) with seq < cursor, newest first: the entries that
 * pass the score and time filters are probed in `inference` (with the source filter), as many
 * at a time as the page may still take; an entry whose inference was deleted finds nothing and
 * is skipped. */
static er_rc list_postings(store *s, reader *r, const store_filter *f, int64_t cursor,
                           page_fill *pf)
{
    sqlite3_stmt *scan = r->st[RSTMT_POST_SCAN];
    store_pack_entry e[STORE_PACK_POST_MAX];
    int64_t cand[PROBE_SEQS];
    size_t n = 0, n_cand = 0;
    er_rc rc = ER_OK;
    int src = SQLITE_DONE;
    sqlite3_bind_text(scan, 1, f->label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(scan, 2, cursor);
    while (!pf->done && (src = sqlite3_step(scan)) == SQLITE_ROW) {
        if (store_pack_post_read(
                sqlite3_column_blob(scan, 2), (size_t)sqlite3_column_bytes(scan, 2),
                sqlite3_column_int64(scan, 0), sqlite3_column_int64(scan, 1), e, &n)) {
            store__note_corrupt(s, r->db, SQLITE_CORRUPT, "decoding label postings");
            rc = ER_DB;
            goto fail;
        }
        for (size_t k = n; k-- > 0 && !pf->done;) {
            if (e[k].seq >= cursor || (f->has_min_score && !(e[k].score >= f->min_score)) ||
                (f->has_since && e[k].ts < f->since_ms) || (f->has_until && e[k].ts >= f->until_ms))
                continue;
            cand[n_cand++] = e[k].seq;
            /* the rows the page may still take, the one that tells a next page exists included */
            size_t want = (size_t)pf->limit + 1 - pf->out->n;
            if (n_cand == PROBE_SEQS || n_cand >= want) {
                rc = probe_seqs(s, r, f, cand, n_cand, pf);
                if (rc) goto fail;
                n_cand = 0;
            }
        }
    }
    if (!pf->done && src != SQLITE_DONE) {
        rc = store__db_error(s, r->db, src, "listing postings");
        goto fail;
    }
    if (!pf->done && n_cand) rc = probe_seqs(s, r, f, cand, n_cand, pf);
fail:
    stmt_done(scan);
    return rc;
}

/* Rows of the filtered list from statement which (RSTMT_LIST, or RSTMT_LIST_LABEL for the
 * inferences older than 005) with seq < cursor, until the page is done. */
static er_rc list_rows(store *s, reader *r, int which, const store_filter *f, int64_t cursor,
                       page_fill *pf)
{
    sqlite3_stmt *st = r->st[which];
    sqlite3_bind_int64(st, 1, cursor);
    bind_text(st, 2, f->source);
    if (f->has_min_score) sqlite3_bind_double(st, 3, f->min_score);
    if (f->has_since) sqlite3_bind_int64(st, 4, f->since_ms);
    if (f->has_until) sqlite3_bind_int64(st, 5, f->until_ms);
    /* one extra row tells whether a next page exists */
    sqlite3_bind_int(st, 6, f->limit + 1 - (int)pf->out->n);
    if (f->label) sqlite3_bind_text(st, 7, f->label, -1, SQLITE_STATIC);
    return page_fill_rows(s, r, st, pf);
}

er_rc store_list(store *s, const store_filter *f, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (!f || f->limit < 1 || f->limit > 1000 || f->before_seq < 0) return ER_INVALID;
    reader *r = store__reader_get(s);
    page_fill pf = {.out = out, .limit = f->limit, .max_bytes = s->page_max_bytes};
    int64_t cursor = f->before_seq > 0 ? f->before_seq : INT64_MAX;
    er_rc rc = ER_OK;
    out->items = calloc((size_t)f->limit, sizeof *out->items);
    if (!out->items) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (f->label) {
        /* postings first (seq >= labels_from), then label_score below the watermark */
        rc = list_postings(s, r, f, cursor, &pf);
        if (rc || pf.done || s->labels_from <= 1) goto fail;
        if (cursor > s->labels_from) cursor = s->labels_from;
    }
    rc = list_rows(s, r, f->label ? RSTMT_LIST_LABEL : RSTMT_LIST, f, cursor, &pf);
fail:
    store__reader_put(s, r);
    if (rc) store_page_free(out);
    return rc;
}

er_rc store_list_after(store *s, int64_t after_seq, int limit, size_t max_bytes, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > 1000 || after_seq < 0) return ER_INVALID;
    return store__read_page(s, RSTMT_AFTER, after_seq, limit, PAGE_LABELS, max_bytes, out);
}

void store_page_free(store_page *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++)
        inference_destroy(p->items[i]);
    free(p->items);
    memset(p, 0, sizeof *p);
}

er_rc store_get(store *s, const char *guid, inference **out)
{
    *out = NULL;
    if (!guid) return ER_INVALID;
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_GET];
    inference *inf = NULL;
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = row_to_inference(st, &inf);
    else if (src == SQLITE_DONE)
        rc = ER_NOTFOUND;
    else
        rc = store__db_error(s, r->db, src, "reading inference");
    if (!rc) rc = store__read_labels(r, st, COL_LABELS, inf);
    stmt_done(st);
    if (rc) goto fail;
    *out = inf;
    inf = NULL;
fail:
    store__reader_put(s, r);
    inference_destroy(inf);
    return rc;
}

er_rc store_get_image(store *s, const char *guid, inference_image *out)
{
    memset(out, 0, sizeof *out);
    if (!guid) return ER_INVALID;
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_IMAGE];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? ER_NOTFOUND : store__db_error(s, r->db, src, "reading image");
        goto fail;
    }
    const char *mime = (const char *)sqlite3_column_text(st, 0);
    snprintf(out->mime, sizeof out->mime, "%s", mime ? mime : "");
    out->width = sqlite3_column_int(st, 1);
    out->height = sqlite3_column_int(st, 2);
    const void *data = sqlite3_column_blob(st, 3);
    out->len = (size_t)sqlite3_column_bytes(st, 3);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (out->len) memcpy(out->data, data, out->len);
fail:
    stmt_done(st);
    store__reader_put(s, r);
    return rc;
}

er_rc store_get_thumbnail(store *s, const char *guid, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!guid) return ER_INVALID;
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_THUMB];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? ER_NOTFOUND : store__db_error(s, r->db, src, "reading thumbnail");
        goto fail;
    }
    const void *blob = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    *data = malloc(n ? n : 1);
    if (!*data) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (n) memcpy(*data, blob, n);
    *len = n;
fail:
    stmt_done(st);
    store__reader_put(s, r);
    return rc;
}

er_rc store_get_info(store *s, store_info *out)
{
    memset(out, 0, sizeof *out);
    int64_t c[4] = {0}, e[3] = {0}, pages[1] = {0};
    reader *r = store__reader_get(s);
    er_rc rc = store__read_row(r, RSTMT_COUNTERS, c, 4);
    if (rc) goto fail;
    rc = store__read_row(r, RSTMT_EDGES, e, 3);
    if (rc) goto fail;
    rc = store__read_row(r, RSTMT_PAGES, pages, 1);
    if (rc) goto fail;
    out->rows = c[0];
    out->bytes = c[1];
    out->images = c[2];
    out->outbox = c[3];
    out->oldest_ts = e[0];
    out->newest_ts = e[1];
    out->newest_seq = e[2];
    out->db_file_bytes = pages[0];
    size_t plen = strlen(s->path);
    char *wal = malloc(plen + 5);
    struct stat sb;
    if (wal) {
        memcpy(wal, s->path, plen);
        memcpy(wal + plen, "-wal", 5);
        if (stat(wal, &sb) == 0) out->db_file_bytes += (int64_t)sb.st_size;
        free(wal);
    }
    out->commits = atomic_load(&s->commits);
    out->puts = atomic_load(&s->puts);
    out->duplicates = atomic_load(&s->duplicates);
    out->put_errors = atomic_load(&s->put_errors);
    out->retention_deleted = atomic_load(&s->retention_deleted);
    out->retention_passes = atomic_load(&s->retention_passes);
    pthread_mutex_lock(&s->mu);
    out->queue_depth = (int64_t)s->q_len;
    pthread_mutex_unlock(&s->mu);
    out->write_failures = atomic_load(&s->write_failures);
    pthread_mutex_lock(&s->health_mu);
    out->writes_failing = s->wfail_ms != 0;
    pthread_mutex_unlock(&s->health_mu);
    store_space sp;
    store_space_get(s, &sp);
    out->fs_free_bytes = sp.fs_free_bytes;
    out->cap_exceeds_fs = sp.cap_exceeds_fs;
fail:
    store__reader_put(s, r);
    return rc;
}

/* Reads up to FOREACH_PAGE inferences with seq > after, image bytes included, fewer past
 * page_max_bytes; *more when rows may follow. */
static er_rc foreach_page(store *s, int64_t after, inference **page, size_t *n, bool *more)
{
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_FOREACH];
    er_rc rc = ER_OK;
    int src = SQLITE_DONE;
    *n = 0;
    size_t bytes = 0;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, FOREACH_PAGE);
    while (!page_ends(s->page_max_bytes, *n, FOREACH_PAGE, bytes) &&
           (src = sqlite3_step(st)) == SQLITE_ROW) {
        inference *inf = NULL;
        rc = row_to_inference(st, &inf);
        if (rc) goto fail;
        page[(*n)++] = inf;
        rc = copy_image_data(st, inf);
        if (rc) goto fail;
        rc = store__read_labels(r, st, COL_LABELS, inf);
        if (rc) goto fail;
        bytes += row_bytes(inf);
    }
    *more = src == SQLITE_ROW; /* stopped by the bound, not by the end */
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = store__db_error(s, r->db, src, "reading inferences");
fail:
    stmt_done(st);
    store__reader_put(s, r);
    return rc;
}

er_rc store_foreach(store *s, store_each_fn fn, void *arg)
{
    inference *page[FOREACH_PAGE];
    size_t n = 0;
    int64_t after = 0;
    bool more = false;
    er_rc rc;
    /* The reader goes back to the pool between pages, so fn may use the store freely and no
     * read transaction stays open across a long export. */
    do {
        rc = foreach_page(s, after, page, &n, &more);
        for (size_t i = 0; !rc && i < n; i++) {
            rc = fn(arg, page[i]);
            after = page[i]->seq;
        }
        for (size_t i = 0; i < n; i++)
            inference_destroy(page[i]);
    } while (!rc && more);
    return rc;
}

/* The plans of the statements a list runs, one after the other: with a label, the postings'
 * walk, the probe of each entry's inference and the statement for rows older than 005. */
er_rc store_explain_list(store *s, bool with_label, char **plan)
{
    static const int list[] = {RSTMT_EXPLAIN_LIST};
    static const int label[] = {RSTMT_EXPLAIN_POST, RSTMT_EXPLAIN_BY_SEQS, RSTMT_EXPLAIN_LABEL};
    const int *which = with_label ? label : list;
    size_t n = with_label ? sizeof label / sizeof label[0] : 1;
    *plan = NULL;
    reader *r = store__reader_get(s);
    util_buf b = {0};
    er_rc rc = ER_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        sqlite3_stmt *st = r->st[which[i]];
        int src;
        while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *detail = sqlite3_column_text(st, 3);
            rc = util_buf_printf(&b, "%s\n", detail ? (const char *)detail : "");
        }
        if (!rc && src != SQLITE_DONE) rc = store__db_error(s, r->db, src, "explain");
        stmt_done(st);
    }
    if (rc) goto fail;
    rc = util_buf_append(&b, "", 0);
    if (rc) goto fail;
    *plan = b.data;
    b.data = NULL;
fail:
    store__reader_put(s, r);
    util_buf_free(&b);
    return rc;
}
