/* store_labels.c - the packed labels (schema/005_labels.sql, formats in store_pack.h): on the
 * writer, an inference's labels packed for its row and the postings of the open transaction
 * (gathered per label while its puts run, one label_post row per label written just before its
 * COMMIT, trimmed by retention); on the readers, decoding an inference's labels and the
 * per-label, per-bucket stats aggregated from the rows' packed labels.
 *
 * The writer side (struct store_posts) belongs to the writer thread; s->labels_from is set at
 * open and read-only afterwards. */
#include "store/store_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_pack.h"

/* Labels kept between batches (a model's labels repeat in every batch); past this many the
 * lists are freed at the next reset, so a stream of ever new labels does not grow memory. */
#define POSTS_KEEP_LABELS 4096

/* One label's entries in the open transaction, in seq order (puts run in seq order). */
typedef struct post_list {
    char *label; /* owned */
    uint32_t hash;
    store_pack_entry *e; /* owned */
    size_t n, cap;
} post_list;

struct store_posts {
    post_list *lists; /* owned */
    size_t n_lists, cap_lists;
    uint32_t *slots; /* open addressing: list index + 1, 0 = empty; n_slots a power of 2 */
    size_t n_slots;
    uint8_t *buf; /* owned: a packed labels blob or posting row being written */
    size_t buf_cap;
    const inference_label **order; /* owned: store_pack_labels' scratch */
    size_t order_cap;
};

static uint32_t hash_label(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* Doubles an open-addressing table of item index + 1 (0 = empty) over n items of size bytes,
 * each with its uint32_t hash at offset hash_at. */
static er_rc slots_grow(uint32_t **slots, size_t *n_slots, const void *items, size_t n, size_t size,
                        size_t hash_at)
{
    size_t cap = *n_slots ? *n_slots * 2 : 64;
    uint32_t *grown = calloc(cap, sizeof *grown);
    if (!grown) return ER_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t h;
        memcpy(&h, (const char *)items + i * size + hash_at, sizeof h);
        size_t k = h & (cap - 1);
        while (grown[k])
            k = (k + 1) & (cap - 1);
        grown[k] = (uint32_t)i + 1;
    }
    free(*slots);
    *slots = grown;
    *n_slots = cap;
    return ER_OK;
}

static void posts_free_lists(struct store_posts *p)
{
    for (size_t i = 0; i < p->n_lists; i++) {
        free(p->lists[i].label);
        free(p->lists[i].e);
    }
    p->n_lists = 0;
    if (p->slots) memset(p->slots, 0, p->n_slots * sizeof *p->slots);
}

void store__posts_destroy(store *s)
{
    struct store_posts *p = s->posts;
    if (!p) return;
    posts_free_lists(p);
    free(p->lists);
    free(p->slots);
    free(p->buf);
    free(p->order);
    free(p);
    s->posts = NULL;
}

er_rc store__posts_create(store *s)
{
    s->posts = calloc(1, sizeof *s->posts);
    return s->posts ? ER_OK : ER_NOMEM;
}

void store__posts_reset(store *s)
{
    struct store_posts *p = s->posts;
    if (p->n_lists > POSTS_KEEP_LABELS) posts_free_lists(p);
    for (size_t i = 0; i < p->n_lists; i++)
        p->lists[i].n = 0;
}

static er_rc grow(void **ptr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return ER_OK;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *grown = realloc(*ptr, ncap * size);
    if (!grown) return ER_NOMEM;
    *ptr = grown;
    *cap = ncap;
    return ER_OK;
}

er_rc store__labels_pack(store *s, const inference *inf, const void **blob, size_t *len)
{
    struct store_posts *p = s->posts;
    size_t n = store_pack_labels_size(inf->labels, inf->n_labels);
    er_rc rc = grow((void **)&p->buf, &p->buf_cap, n ? n : 1, 1);
    if (!rc) rc = grow((void **)&p->order, &p->order_cap, inf->n_labels, sizeof *p->order);
    if (!rc) rc = store_pack_labels(inf->labels, inf->n_labels, p->order, p->buf);
    *blob = p->buf; /* never NULL: zero labels are an empty blob, not NULL (the old form) */
    *len = n;
    return rc;
}

/* The list of label, made if new (its slot table doubled past half full). */
static er_rc posts_list(struct store_posts *p, const char *label, post_list **out)
{
    size_t len = strlen(label);
    uint32_t h = hash_label(label, len);
    if (2 * (p->n_lists + 1) > p->n_slots &&
        slots_grow(&p->slots, &p->n_slots, p->lists, p->n_lists, sizeof *p->lists,
                   offsetof(post_list, hash)))
        return ER_NOMEM;
    size_t k = h & (p->n_slots - 1);
    for (; p->slots[k]; k = (k + 1) & (p->n_slots - 1)) {
        post_list *l = &p->lists[p->slots[k] - 1];
        if (l->hash == h && strcmp(l->label, label) == 0) {
            *out = l;
            return ER_OK;
        }
    }
    if (grow((void **)&p->lists, &p->cap_lists, p->n_lists + 1, sizeof *p->lists)) return ER_NOMEM;
    post_list *l = &p->lists[p->n_lists];
    memset(l, 0, sizeof *l);
    l->label = strdup(label);
    if (!l->label) return ER_NOMEM;
    l->hash = h;
    p->slots[k] = (uint32_t)++p->n_lists;
    *out = l;
    return ER_OK;
}

er_rc store__posts_add(store *s, const inference *inf, int64_t seq)
{
    struct store_posts *p = s->posts;
    /* room first for every label, so a failure adds nothing of this put */
    for (size_t i = 0; i < inf->n_labels; i++) {
        post_list *l;
        if (posts_list(p, inf->labels[i].label, &l) ||
            grow((void **)&l->e, &l->cap, l->n + 1, sizeof *l->e))
            return ER_NOMEM;
    }
    for (size_t i = 0; i < inf->n_labels; i++) {
        post_list *l = NULL;
        posts_list(p, inf->labels[i].label, &l); /* found: made above */
        l->e[l->n++] = (store_pack_entry){seq, inf->labels[i].score, inf->ts};
    }
    return ER_OK;
}

er_rc store__posts_flush(store *s)
{
    struct store_posts *p = s->posts;
    sqlite3_stmt *st = s->wst[WSTMT_INS_POST];
    er_rc rc = grow((void **)&p->buf, &p->buf_cap, STORE_PACK_POST_MAX * STORE_PACK_ENTRY_MAX, 1);
    if (rc) goto fail;
    for (size_t i = 0; i < p->n_lists; i++) {
        post_list *l = &p->lists[i];
        for (size_t done = 0, k; done < l->n; done += k) {
            k = l->n - done;
            if (k > STORE_PACK_POST_MAX) k = STORE_PACK_POST_MAX;
            size_t len = store_pack_post(l->e + done, k, p->buf);
            sqlite3_bind_text(st, 1, l->label, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, l->e[done].seq);
            sqlite3_bind_int64(st, 3, l->e[done + k - 1].seq);
            sqlite3_bind_blob(st, 4, p->buf, (int)len, SQLITE_STATIC);
            int src = step_once(st);
            if (src != SQLITE_DONE) {
                rc = store__db_error(s, s->wdb, src, "writing label postings");
                goto fail;
            }
        }
        l->n = 0;
    }
fail:
    return rc;
}

er_rc store__posts_trim(store *s, int64_t upto)
{
    sqlite3_stmt *st = s->wst[WSTMT_TRIM_POSTS];
    sqlite3_bind_int64(st, 1, upto);
    int src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : store__db_error(s, s->wdb, src, "trimming label postings");
}

/* ---- readers ---- */

typedef er_rc (*label_fn)(void *arg, const char *label, size_t len, double score);

/* Calls fn for each label of the row seq: packed in column col of row or, when that is NULL
 * (written before 005), its label_score rows; both in label order. */
static er_rc each_label(reader *r, sqlite3_stmt *row, int col, int64_t seq, label_fn fn, void *arg)
{
    er_rc rc = ER_OK;
    int src;
    if (sqlite3_column_type(row, col) != SQLITE_NULL) {
        store_pack_iter it;
        const char *label;
        size_t len;
        double score;
        int got;
        store_pack_iter_init(&it, sqlite3_column_blob(row, col),
                             (size_t)sqlite3_column_bytes(row, col));
        while ((got = store_pack_labels_next(&it, &label, &len, &score)) > 0)
            if ((rc = fn(arg, label, len, score))) return rc;
        if (got < 0) {
            store__note_corrupt(r->owner, r->db, SQLITE_CORRUPT, "decoding an inference's labels");
            rc = ER_DB;
        }
        return rc;
    }
    sqlite3_stmt *st = r->st[RSTMT_GET_LABELS];
    sqlite3_bind_int64(st, 1, seq);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(st, 0);
        if (!label) continue;
        rc = fn(arg, label, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_double(st, 1));
        if (rc) goto fail;
    }
    if (src != SQLITE_DONE) rc = store__db_error(r->owner, r->db, src, "reading labels");
fail:
    stmt_done(st);
    return rc;
}

/* A NUL-terminated copy of a label decoded from a blob (not terminated there, so not strndup:
 * ASan's strict_string_checks would look for the NUL past the blob), or NULL. */
static char *text_copy(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return copy;
}

static er_rc add_label(void *arg, const char *label, size_t len, double score)
{
    inference *inf = arg;
    if (grow((void **)&inf->labels, &inf->labels_cap, inf->n_labels + 1, sizeof *inf->labels))
        return ER_NOMEM;
    inference_label *l = &inf->labels[inf->n_labels];
    if (!(l->label = text_copy(label, len))) return ER_NOMEM;
    l->score = score;
    inf->n_labels++;
    return ER_OK;
}

er_rc store__read_labels(reader *r, sqlite3_stmt *row, int col, inference *inf)
{
    return each_label(r, row, col, inf->seq, add_label, inf);
}

/* ---- stats: per label per bucket, aggregated here from each row's labels and top class ---- */

typedef struct stat_group {
    char *label; /* owned until handed to the answer */
    int64_t bucket, count, top;
    double sum;     /* in the order of the ts index, as SQLite's avg() summed the join's rows */
    double top_sum; /* the top scores of the rows whose top class this is */
    uint32_t hash;
} stat_group;

typedef struct stat_agg {
    stat_group *g;
    size_t n, cap;
    uint32_t *slots; /* group index + 1, 0 = empty; n_slots a power of 2 */
    size_t n_slots;
    size_t bytes, max_bytes; /* what the answer will hold, against page_max_bytes */
    int64_t row_bucket;      /* the bucket of the row whose labels are being added */
    const char *want;        /* the query's label (borrowed), NULL: any */
    bool found;              /* the row has the label want */
} stat_agg;

/* The group of label in bucket, made (with zero counts) if new. */
static er_rc agg_group(stat_agg *a, const char *label, size_t len, int64_t bucket, stat_group **out)
{
    uint32_t h = hash_label(label, len) ^ (uint32_t)((uint64_t)bucket * 0x9e3779b97f4a7c15u >> 32);
    if (2 * (a->n + 1) > a->n_slots &&
        slots_grow(&a->slots, &a->n_slots, a->g, a->n, sizeof *a->g, offsetof(stat_group, hash)))
        return ER_NOMEM;
    size_t k = h & (a->n_slots - 1);
    for (; a->slots[k]; k = (k + 1) & (a->n_slots - 1)) {
        stat_group *g = &a->g[a->slots[k] - 1];
        if (g->hash == h && g->bucket == bucket && strncmp(g->label, label, len) == 0 &&
            g->label[len] == '\0') {
            *out = g;
            return ER_OK;
        }
    }
    /* the row, its label, and what the answer makes of it (two JSON points of ~4 values) */
    a->bytes += sizeof(store_stats_row) + 2 * len + 400;
    if (a->bytes > a->max_bytes) return ER_TOOBIG;
    if (grow((void **)&a->g, &a->cap, a->n + 1, sizeof *a->g)) return ER_NOMEM;
    stat_group *g = &a->g[a->n];
    memset(g, 0, sizeof *g);
    if (!(g->label = text_copy(label, len))) return ER_NOMEM;
    g->bucket = bucket;
    g->hash = h;
    a->slots[k] = (uint32_t)++a->n;
    *out = g;
    return ER_OK;
}

static int by_label_bucket(const void *x, const void *y)
{
    const stat_group *a = x, *b = y;
    int c = strcmp(a->label, b->label);
    return c ? c : (a->bucket > b->bucket) - (a->bucket < b->bucket);
}

/* One label of a row in the bucket a->row_bucket: one occurrence. */
static er_rc agg_label(void *arg, const char *label, size_t len, double score)
{
    stat_agg *a = arg;
    stat_group *g;
    er_rc rc = agg_group(a, label, len, a->row_bucket, &g);
    if (rc == ER_OK) {
        g->count++;
        g->sum += score;
    }
    return rc;
}

/* One label of a row, looking for the query's label. */
static er_rc find_label(void *arg, const char *label, size_t len, double score)
{
    (void)score;
    stat_agg *a = arg;
    if (!a->found && strncmp(a->want, label, len) == 0 && a->want[len] == '\0') a->found = true;
    return ER_OK;
}

/* One row of the range: its labels' occurrences, its top class, the sums. A row without the
 * query's label counts nowhere. */
static er_rc agg_row(reader *r, sqlite3_stmt *st, stat_agg *a, store_stats_sum *sum)
{
    int64_t seq = sqlite3_column_int64(st, 0);
    a->row_bucket = sqlite3_column_int64(st, 1);
    er_rc rc = ER_OK;
    if (a->want) {
        a->found = false;
        if ((rc = each_label(r, st, 2, seq, find_label, a)) || !a->found) goto fail;
    }
    if ((rc = each_label(r, st, 2, seq, agg_label, a))) goto fail;
    sum->inferences++;
    const char *top = (const char *)sqlite3_column_text(st, 3);
    if (!top) {
        sum->no_top++;
        goto fail;
    }
    stat_group *g;
    if ((rc = agg_group(a, top, (size_t)sqlite3_column_bytes(st, 3), a->row_bucket, &g))) goto fail;
    g->top++;
    g->top_sum += sqlite3_column_double(st, 4);
fail:
    return rc;
}

er_rc store_stats(store *s, const store_stats_query *q, store_stats_row **rows, size_t *n,
                  store_stats_sum *sum)
{
    *rows = NULL;
    *n = 0;
    *sum = (store_stats_sum){0};
    if (q->bucket_ms <= 0 || q->until_ms < q->since_ms) return ER_INVALID;
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_STATS];
    stat_agg a = {.max_bytes = s->page_max_bytes, .want = q->label};
    store_stats_row *v = NULL;
    er_rc rc = ER_OK;
    int src;
    sqlite3_bind_int64(st, 1, q->since_ms);
    sqlite3_bind_int64(st, 2, q->until_ms);
    sqlite3_bind_int64(st, 3, q->bucket_ms);
    if (q->source) sqlite3_bind_text(st, 4, q->source, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, q->min_score);
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = agg_row(r, st, &a, sum))) goto fail;
    if (src != SQLITE_DONE) {
        rc = store__db_error(s, r->db, src, "computing stats");
        goto fail;
    }
    v = calloc(a.n ? a.n : 1, sizeof *v);
    if (!v) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (a.n > 1) qsort(a.g, a.n, sizeof *a.g, by_label_bucket);
    for (size_t i = 0; i < a.n; i++) {
        v[i].label = a.g[i].label;
        a.g[i].label = NULL;
        v[i].bucket_ms = a.g[i].bucket;
        v[i].count = a.g[i].count;
        v[i].mean_score = a.g[i].count ? a.g[i].sum / (double)a.g[i].count : 0;
        v[i].top = a.g[i].top;
        v[i].top_mean = a.g[i].top ? a.g[i].top_sum / (double)a.g[i].top : 0;
    }
    *rows = v;
    *n = a.n;
fail:
    stmt_done(st);
    store__reader_put(s, r);
    for (size_t i = 0; i < a.n; i++)
        free(a.g[i].label);
    free(a.g);
    free(a.slots);
    if (rc) *sum = (store_stats_sum){0};
    return rc;
}

void store_stats_free(store_stats_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].label);
    free(rows);
}
