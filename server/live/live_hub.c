/* live_hub.c - the hub: the store's commits in, the ring out, and what each client sends next
 * (from the ring, or from the cache when the ring no longer covers it, as on resume).
 * Everything runs on the wsloop thread except lv_hub_on_commit and lv_hub_on_deleted (the
 * store's writer thread), which only count the stats and record the newest committed seq and
 * its commit time, or the deleted ids, under mu and wake the loop (for commits, only while a
 * client is connected).
 *
 * With no client listening the hub reads and renders nothing (it cost ~20 us of this thread per
 * inference): the ring is emptied and moved past the commits, and a client that resumes reads
 * them from the cache, with their commit times from the kept marks (mark_ms).
 *
 * The ring holds the last committed inferences, rendered once, in seq order and contiguous:
 * every row with ring_base_seq < seq <= fetched_seq that still existed when read is in it. It
 * holds at most LV_RING_CAP of them and at most ring_max_bytes (live_ring_bytes) of messages
 * and filter data, the newest always: appending drops the oldest until the new one fits, so a
 * few big inferences leave fewer in the ring, not more memory. A client's cursor is the last seq it
 * has considered (sent or filtered out); it sends from the ring while the ring covers its cursor,
 * otherwise from the cache (store_list_after), so resume and a client that fell out of the ring use
 * the same path. The ring owns its entries' inferences and messages; a message lv_hub_next returns
 * from it is borrowed until the next pull. */
#include "live/live_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_print.h"
#include "core/log.h"
#include "core/util.h"
#include "model/view.h"

#define PULL_PAGE 256              /* rows per store read */
#define BACKLOG_PAGE 64            /* rows per cache read for one client */
#define BACKLOG_BYTES (256u << 10) /* and their bytes: every connected client may hold one */
#define RESUME_SCAN_MAX 10000      /* rows examined to count a resume backlog (~0.1 s of loop) */

/* {"type":"inference","inference":<view>,"committed_ms":..} with LWS_PRE headroom, written as
 * text (view_render: the bytes cJSON_PrintUnformatted of the same tree gives, without its ~50
 * allocations). committed_ms 0: null (not known). */
static unsigned char *render_inference(const inference *inf, double committed_ms, size_t *len)
{
    static const char head[] = "{\"type\":\"inference\",\"inference\":";
    static const char pre[LWS_PRE];
    json_buf b = {0};
    char *tail = view_render_tail(inf);
    char *view = tail ? view_render(inf->guid, inf->seq, inf->ts, tail) : NULL;
    unsigned char *buf = NULL;
    if (!view) goto fail;
    json_buf_raw(&b, pre, LWS_PRE);
    json_buf_raw(&b, head, sizeof head - 1);
    json_buf_raw(&b, view, strlen(view));
    json_buf_raw(&b, ",\"committed_ms\":", 16);
    if (committed_ms > 0)
        json_buf_number(&b, committed_ms);
    else
        json_buf_raw(&b, "null", 4);
    json_buf_raw(&b, "}", 1);
    size_t n = b.len;
    buf = (unsigned char *)json_buf_take(&b);
    if (buf) *len = n - LWS_PRE;
fail:
    free(view);
    free(tail);
    return buf;
}

/* ---- commits in, ring out ---- */

void lv_hub_on_commit(void *arg, inference *const *committed, size_t n)
{
    live *l = arg;
    int64_t top = 0;
    for (size_t i = 0; i < n; i++)
        if (committed[i]->seq > top) top = committed[i]->seq;
    if (!top) return;
    double now = (double)util_now_us() / 1000.0;
    pthread_mutex_lock(&l->mu);
    if (!l->stopped) {
        for (size_t i = 0; i < n; i++) /* here, so the loop reads no row nobody listens to */
            lv_stats_add(l, committed[i], (int64_t)now);
        if (top > l->committed_seq) l->committed_seq = top;
        if (l->n_commits == LV_COMMITS_MAX) { /* the loop is far behind: keep the newest */
            memmove(l->commits, l->commits + 1, (LV_COMMITS_MAX - 1) * sizeof *l->commits);
            l->n_commits--;
        }
        l->commits[l->n_commits++] = (lv_commit_mark){.seq = top, .ms = now};
        /* With no client connected the loop has nothing to do per commit (an auth pulls what
         * was committed before it): it is woken only to keep the commit times from overflowing. */
        if (atomic_load(&l->n_clients_now) > 0 || l->n_commits >= LV_COMMITS_MAX / 2)
            wsloop_wake(l->loop);
    }
    pthread_mutex_unlock(&l->mu);
}

void lv_hub_on_deleted(void *arg, const char *const *guids, size_t n)
{
    live *l = arg;
    pthread_mutex_lock(&l->mu);
    /* beyond LV_DELETED_MAX waiting the loop is gone (or hopelessly behind): drop */
    for (size_t i = 0; i < n && !l->stopped && l->n_deleted < LV_DELETED_MAX; i++) {
        if (strlen(guids[i]) > UTIL_UUID_LEN) continue;
        char(*grown)[UTIL_UUID_LEN + 1] = realloc(l->deleted, (l->n_deleted + 1) * sizeof *grown);
        if (!grown) break;
        l->deleted = grown;
        snprintf(l->deleted[l->n_deleted++], UTIL_UUID_LEN + 1, "%s", guids[i]);
    }
    if (!l->stopped && l->n_deleted) wsloop_wake(l->loop);
    pthread_mutex_unlock(&l->mu);
}

void lv_hub_on_cleared(void *arg)
{
    live *l = arg;
    pthread_mutex_lock(&l->mu);
    if (!l->stopped) {
        l->cleared = true;
        wsloop_wake(l->loop);
    }
    pthread_mutex_unlock(&l->mu);
}

static lv_ring_entry *entry_at(live *l, uint64_t idx)
{
    return &l->ring[idx % LV_RING_CAP];
}

static uint64_t ring_tail(const live *l)
{
    return l->tail;
}

/* Whether c is to get ring entry e: not deleted since, and passing c's filter. */
static bool wants(const lv_client *c, const lv_ring_entry *e)
{
    return !e->deleted && live_filter_match(&c->filter, e->inf);
}

/* The slow rule: a caught-up client more than LIVE_CLIENT_QUEUE entries behind the head loses
 * the oldest ones; the matching ones are counted and it is told. */
static void enforce_queue(live *l, lv_client *c)
{
    if (c->state != LV_CS_OPEN || !c->in_ring) return;
    if (c->ring_idx < l->tail) { /* the byte bound evicted its next entry: on to the cache */
        c->in_ring = false;
        return;
    }
    if (!c->caught_up) {
        if (l->head - c->ring_idx <= LIVE_CLIENT_QUEUE) c->caught_up = true;
        return;
    }
    while (l->head - c->ring_idx > LIVE_CLIENT_QUEUE) {
        lv_ring_entry *e = entry_at(l, c->ring_idx++);
        c->cursor = e->seq;
        if (wants(c, e)) {
            c->missed++;
            c->missed_reason = "slow_client";
            atomic_fetch_add(&l->n_missed, 1);
        }
    }
}

/* Keeps the commit marks of one pull (in seq order) in the loop's history; the oldest ones
 * leave it, and the rows up to theirs no longer have a known commit time. */
static void marks_keep(live *l, const lv_commit_mark *marks, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (l->marks_head && marks[k].seq <= l->marks[(l->marks_head - 1) % LV_MARKS_MAX].seq)
            continue;
        lv_commit_mark *slot = &l->marks[l->marks_head % LV_MARKS_MAX];
        if (l->marks_head >= LV_MARKS_MAX) l->marks_floor = slot->seq;
        *slot = marks[k];
        l->marks_head++;
    }
}

/* The commit time of row seq, epoch ms: that of the first kept commit whose newest seq is at
 * least seq (the commit that stored it, or the next one known when the writer's marks
 * overflowed); 0 when not known (before the relay started, or too long ago). */
static double mark_ms(const live *l, int64_t seq)
{
    if (seq <= l->marks_floor) return 0;
    uint64_t lo = l->marks_head > LV_MARKS_MAX ? l->marks_head - LV_MARKS_MAX : 0;
    uint64_t hi = l->marks_head;
    while (lo < hi) { /* the first kept mark with seq >= the row's */
        uint64_t mid = lo + (hi - lo) / 2;
        if (l->marks[mid % LV_MARKS_MAX].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->marks_head ? l->marks[lo % LV_MARKS_MAX].ms : 0;
}

static void ring_gauges(live *l)
{
    atomic_store(&l->ring_n_now, (long long)(l->head - l->tail));
    atomic_store(&l->ring_bytes_now, (long long)l->ring_bytes);
}

/* The oldest entry leaves the ring; the rows up to its seq are the cache's to serve. */
static void ring_evict(live *l)
{
    lv_ring_entry *e = entry_at(l, l->tail++);
    l->ring_base_seq = e->seq;
    l->ring_bytes -= e->bytes;
    inference_destroy(e->inf);
    free(e->msg);
    *e = (lv_ring_entry){0};
}

static void ring_append(live *l, inference *inf, double committed_ms)
{
    size_t len = 0;
    unsigned char *msg = render_inference(inf, committed_ms, &len);
    if (!msg) {
        log_warn("live", "out of memory rendering inference %lld", (long long)inf->seq);
        while (l->tail < l->head) /* the ring stays contiguous: clients read from the cache */
            ring_evict(l);
        l->ring_base_seq = inf->seq;
        inference_destroy(inf);
        return;
    }
    /* the filters need only labels, source and top score: the big texts are in msg now */
    free(inf->result_json);
    free(inf->timing_json);
    free(inf->info_json);
    inf->result_json = inf->timing_json = inf->info_json = NULL;
    size_t bytes = LWS_PRE + len + inference_footprint(inf);
    while (l->tail < l->head &&
           (l->head - l->tail >= LV_RING_CAP || l->ring_bytes + bytes > l->ring_max_bytes))
        ring_evict(l);
    *entry_at(l, l->head) =
        (lv_ring_entry){.seq = inf->seq, .inf = inf, .msg = msg, .len = len, .bytes = bytes};
    l->head++;
    l->ring_bytes += bytes;
    ring_gauges(l);
}

/* Tells every client that the inference guid was deleted. */
static void tell_deleted(live *l, const char *guid)
{
    char text[96];
    snprintf(text, sizeof text, "{\"type\":\"deleted\",\"id\":\"%s\"}", guid);
    for (lv_client *c = l->clients; c; c = c->next)
        if (c->state == LV_CS_OPEN) lv_queue_text(c, text, LV_OUT_PLAIN);
}

/* After clear_cache: every ring entry whose row the cache no longer has is marked deleted (and
 * the clients told), so nobody replays a cleared row from the ring. The ring is contiguous in
 * seq, so one walk over the cache's rows in the ring's range (a few pages) finds them. On a
 * read error the whole ring is dropped: serving less is safe, serving cleared rows is not. */
static void hub_recheck_ring(live *l)
{
    uint64_t i = ring_tail(l);
    int64_t after = l->ring_base_seq;
    bool error = false;
    while (i < l->head && !error) {
        store_page page;
        if (store_list_after(l->st, after, PULL_PAGE, 0, &page) != ER_OK) {
            error = true;
            break;
        }
        for (size_t k = 0; k < page.n && i < l->head; k++) {
            int64_t seq = page.items[k]->seq;
            for (; i < l->head && entry_at(l, i)->seq < seq; i++) /* gone from the cache */
                if (!entry_at(l, i)->deleted) {
                    entry_at(l, i)->deleted = true;
                    tell_deleted(l, entry_at(l, i)->inf->guid);
                }
            if (i < l->head && entry_at(l, i)->seq == seq) i++; /* still there */
            after = seq;
        }
        bool last = page.n < PULL_PAGE;
        store_page_free(&page);
        if (last) break;
    }
    if (error) log_warn("live", "cannot read the cache after clear_cache: dropping the ring");
    for (; i < l->head; i++) /* past the cache's newest row (or unread): gone */
        if (!entry_at(l, i)->deleted) {
            entry_at(l, i)->deleted = true;
            tell_deleted(l, entry_at(l, i)->inf->guid);
        }
}

/* Deletes reported since the last pull: mark them in the ring and tell every client. */
static void hub_deletes(live *l)
{
    pthread_mutex_lock(&l->mu);
    char(*del)[UTIL_UUID_LEN + 1] = l->deleted;
    size_t n = l->n_deleted;
    bool cleared = l->cleared;
    l->deleted = NULL;
    l->n_deleted = 0;
    l->cleared = false;
    pthread_mutex_unlock(&l->mu);
    for (size_t k = 0; k < n; k++) {
        for (uint64_t i = ring_tail(l); i < l->head; i++)
            if (strcmp(entry_at(l, i)->inf->guid, del[k]) == 0) entry_at(l, i)->deleted = true;
        tell_deleted(l, del[k]);
    }
    free(del);
    if (cleared) hub_recheck_ring(l);
}

/* Whether any client reads the stream (an authenticated one). */
static bool hub_listened(const live *l)
{
    for (const lv_client *c = l->clients; c; c = c->next)
        if (c->state == LV_CS_OPEN) return true;
    return false;
}

/* Reads everything committed since the last pull into the ring. With nobody listening, reads
 * nothing: the ring is emptied and moved past the commits (ring_base_seq = fetched_seq), so a
 * client that connects later and resumes reads them from the cache, with their commit times
 * from the marks. */
void lv_hub_pull(live *l)
{
    hub_deletes(l);
    pthread_mutex_lock(&l->mu);
    int64_t target = l->committed_seq;
    lv_commit_mark marks[LV_COMMITS_MAX];
    size_t n_marks = l->n_commits;
    memcpy(marks, l->commits, n_marks * sizeof *marks);
    l->n_commits = 0;
    pthread_mutex_unlock(&l->mu);
    marks_keep(l, marks, n_marks);
    if (!hub_listened(l)) {
        while (l->tail < l->head)
            ring_evict(l);
        if (target > l->fetched_seq) l->fetched_seq = target;
        l->ring_base_seq = l->fetched_seq;
        ring_gauges(l);
        return;
    }
    while (l->fetched_seq < target) {
        store_page page;
        er_rc rc = store_list_after(l->st, l->fetched_seq, PULL_PAGE, 0, &page);
        if (rc) {
            log_warn("live", "cannot read new inferences: %s (will retry on the next commit)",
                     er_rc_name(rc));
            return;
        }
        if (page.n == 0) { /* removed before we read them */
            l->fetched_seq = target;
            store_page_free(&page);
            break;
        }
        size_t i = 0;
        for (; i < page.n; i++) {
            inference *inf = page.items[i];
            if (inf->seq > target) break; /* committed after we looked: next pull, with its time */
            page.items[i] = NULL;
            l->fetched_seq = inf->seq;
            ring_append(l, inf, mark_ms(l, inf->seq)); /* takes inf */
        }
        if (i < page.n) l->fetched_seq = target; /* the rest of the range is gone */
        store_page_free(&page);
        for (lv_client *c = l->clients; c; c = c->next)
            enforce_queue(l, c);
    }
    for (lv_client *c = l->clients; c; c = c->next)
        if (c->state == LV_CS_OPEN) lws_callback_on_writable(c->wsi);
}

/* ---- what a client sends next ---- */

/* The next inference message for c (borrowed from the ring, or rendered into *owned), NULL
 * when it has nothing to send now. Advances the cursor past filtered-out rows. */
const unsigned char *lv_hub_next(live *l, lv_client *c, size_t *len, unsigned char **owned)
{
    *owned = NULL;
    for (;;) {
        if (c->in_ring && c->ring_idx < ring_tail(l)) c->in_ring = false; /* overwritten */
        if (!c->in_ring && c->cursor >= l->ring_base_seq) {
            /* the ring covers the cursor: find the first entry after it */
            store_page_free(&c->backlog);
            c->backlog_pos = 0;
            uint64_t i = ring_tail(l);
            while (i < l->head && entry_at(l, i)->seq <= c->cursor)
                i++;
            c->ring_idx = i;
            c->in_ring = true;
        }
        if (c->in_ring) {
            while (c->ring_idx < l->head) {
                lv_ring_entry *e = entry_at(l, c->ring_idx++);
                c->cursor = e->seq;
                if (wants(c, e)) {
                    *len = e->len;
                    return e->msg;
                }
            }
            c->caught_up = true;
            return NULL;
        }
        /* from the cache */
        if (c->backlog_pos >= c->backlog.n) {
            store_page_free(&c->backlog);
            c->backlog_pos = 0;
            if (store_list_after(l->st, c->cursor, BACKLOG_PAGE, BACKLOG_BYTES, &c->backlog) !=
                ER_OK)
                return NULL; /* logged by the store; tried again on the next writable */
            if (c->backlog.n == 0) {
                c->cursor = l->ring_base_seq; /* the rows in between are gone */
                continue;
            }
        }
        while (c->backlog_pos < c->backlog.n) {
            inference *inf = c->backlog.items[c->backlog_pos++];
            c->cursor = inf->seq;
            if (c->cursor > l->ring_base_seq) { /* reached the ring: continue from there */
                c->cursor = inf->seq - 1;
                c->backlog_pos = c->backlog.n;
                break;
            }
            if (live_filter_match(&c->filter, inf)) {
                *owned = render_inference(inf, mark_ms(l, inf->seq), len);
                if (*owned) return *owned;
            }
        }
    }
}

/* Resume: count what matches after since_seq (bounded scan) and place the cursor so that at
 * most LIVE_RESUME_MAX messages are replayed; the rest is reported as missed. */
void lv_hub_resume(live *l, lv_client *c, int64_t since)
{
    int64_t end = l->fetched_seq, from = since;
    int64_t skipped = 0;
    if (end - from > RESUME_SCAN_MAX) { /* counting them all would stall the loop */
        skipped = end - RESUME_SCAN_MAX - from;
        from = end - RESUME_SCAN_MAX;
    }
    int64_t keep[LIVE_RESUME_MAX]; /* the newest matching seqs, as a ring */
    size_t n_match = 0;
    int64_t cur = from;
    while (cur < end) {
        store_page page;
        if (store_list_after(l->st, cur, 1000, 0, &page) != ER_OK) break;
        for (size_t i = 0; i < page.n && page.items[i]->seq <= end; i++)
            if (live_filter_match(&c->filter, page.items[i]))
                keep[n_match++ % LIVE_RESUME_MAX] = page.items[i]->seq;
        bool more = page.next_seq != 0;
        cur = page.n ? page.items[page.n - 1]->seq : end;
        store_page_free(&page);
        if (!more) break;
    }
    c->cursor = since;
    if (n_match > LIVE_RESUME_MAX || skipped > 0) {
        size_t over = n_match > LIVE_RESUME_MAX ? n_match - LIVE_RESUME_MAX : 0;
        c->missed = (int64_t)over + skipped;
        c->missed_reason = "resume_limit";
        atomic_fetch_add(&l->n_missed, c->missed);
        /* the oldest kept seq is the slot after the newest one in the ring */
        int64_t oldest = n_match > LIVE_RESUME_MAX ? keep[n_match % LIVE_RESUME_MAX]
                         : n_match                 ? keep[0]
                                                   : end + 1;
        c->cursor = oldest - 1;
    }
}

void lv_hub_free(live *l)
{
    while (l->tail < l->head)
        ring_evict(l);
}
