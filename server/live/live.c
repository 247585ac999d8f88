/* live.c - see live.h and docs/live.md. Everything below runs on the wsloop thread except
 * on_commit (the store's writer thread), which only records the newest committed seq and its
 * commit time under mu and wakes the loop.
 *
 * The ring holds the last RING_CAP committed inferences, rendered once, in seq order and
 * contiguous: every row with ring_base_seq < seq <= fetched_seq that still existed when read is
 * in it. A client's cursor is the last seq it has considered (sent or filtered out); it sends
 * from the ring while the ring covers its cursor, otherwise from the cache (store_list_after),
 * so resume and a client that fell out of the ring use the same path. */
#include "live/live.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/util.h"
#include "live/live_proto.h"
#include "model/view.h"

#define LIVE_PATH "/api/v1/live"
#define RING_CAP 1024   /* > LIVE_CLIENT_QUEUE * 2: a pull appends at most one page */
#define PULL_PAGE 256   /* rows per store read */
#define BACKLOG_PAGE 64 /* rows per cache read for one client */
#define CTRL_MAX 64     /* queued non-inference messages per client */
#define AUTH_TIMEOUT_US (5 * LWS_USEC_PER_SEC)
#define FWD_POLL_MS 500
#define STATS_EVERY_MS 10000
#define STATS_MINUTES 60 /* the stats window: the last hour, in minute buckets */
#define STATS_LABELS_MAX 256
#define RESUME_SCAN_MAX 10000 /* rows examined to count a resume backlog (~0.1 s of loop) */
#define COMMITS_MAX 256       /* commit times remembered between two pulls */
/* Kernel send buffer per client. Linux grows an unset one to megabytes, which would hide
 * thousands of messages from the LIVE_CLIENT_QUEUE bound (and hold that much kernel memory
 * per stuck client); 64 KiB still covers a burst of ~100 messages. */
#define CLIENT_SNDBUF (64 * 1024)

typedef struct ring_entry {
    int64_t seq;
    bool deleted;       /* deleted since: no longer served */
    inference *inf;     /* owned: labels, source and top score for the filters */
    unsigned char *msg; /* owned: LWS_PRE bytes, then the message text */
    size_t len;
} ring_entry;

typedef enum out_kind { OUT_PLAIN, OUT_FORWARDER, OUT_STATS } out_kind;

typedef struct out_msg {
    struct out_msg *next;
    out_kind kind;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
} out_msg;

typedef enum client_state { CS_AUTH, CS_OPEN } client_state;

typedef struct client {
    struct client *next, *prev;
    struct lws *wsi;
    client_state state;
    auth_role role;
    live_filter filter;
    int64_t cursor;    /* last seq considered */
    bool in_ring;      /* ring_idx is valid for cursor */
    uint64_t ring_idx; /* next ring entry to consider */
    bool caught_up;    /* within LIVE_CLIENT_QUEUE of the head once: the slow rule applies */
    int64_t missed;
    const char *missed_reason; /* static */
    out_msg *ctrl_head, *ctrl_tail;
    size_t n_ctrl;
    bool close_after; /* close once the control queue is written */
    char *rx;         /* a client message being gathered from fragments */
    size_t rx_len;
    bool rx_skip;
    const char *rx_skip_why;
    store_page backlog; /* rows read from the cache, being sent */
    size_t backlog_pos;
} client;

typedef struct label_stat {
    char *label;
    int64_t minute[STATS_MINUTES];
    int64_t count[STATS_MINUTES];
    double sum[STATS_MINUTES];
} label_stat;

typedef struct commit_mark {
    int64_t seq; /* newest seq of one commit */
    double ms;   /* its commit time, epoch ms */
} commit_mark;

struct live {
    store *st;
    const auth *au;
    const report_part *fwd; /* NULL when forwarding is off */
    const char *device;
    wsloop *loop;
    struct lws_vhost *vhost;
    char iface[64];
    /* shared with the writer thread */
    pthread_mutex_t mu;
    bool stopped;
    int64_t committed_seq;
    commit_mark commits[COMMITS_MAX];
    size_t n_commits;
    char (*deleted)[UTIL_UUID_LEN + 1]; /* guids deleted since the last pull (owned array) */
    size_t n_deleted;
    /* loop thread only */
    int64_t fetched_seq;
    int64_t ring_base_seq;
    uint64_t head; /* entries ever appended; entry i lives in ring[i % RING_CAP] */
    ring_entry ring[RING_CAP];
    client *clients;
    size_t n_clients;
    char *fwd_msg; /* the last forwarder message text (rendered on change) */
    label_stat *stats;
    size_t n_stats;
    label_stat total; /* every inference, whatever its labels (label unused) */
    lws_sorted_usec_list_t fwd_sul, stats_sul;
    /* written on the loop thread, read by HTTP threads */
    atomic_llong n_clients_now, n_sent, n_missed, n_refused, n_resumes;
};

/* ---- messages ---- */

static out_msg *out_new(const char *text, size_t len, out_kind kind)
{
    out_msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) return NULL;
    m->next = NULL;
    m->kind = kind;
    m->len = len;
    memcpy(m->buf + LWS_PRE, text, len);
    return m;
}

/* Queues a control message; a pending forwarder or stats message is replaced by a newer one
 * so a client that does not read holds at most one of each. */
static void queue_text(client *c, const char *text, out_kind kind)
{
    if (!text) return;
    if (kind != OUT_PLAIN)
        for (out_msg **pp = &c->ctrl_head; *pp; pp = &(*pp)->next)
            if ((*pp)->kind == kind) {
                out_msg *fresh = out_new(text, strlen(text), kind);
                if (!fresh) return;
                fresh->next = (*pp)->next;
                if (c->ctrl_tail == *pp) c->ctrl_tail = fresh;
                free(*pp);
                *pp = fresh;
                return;
            }
    if (c->n_ctrl >= CTRL_MAX) { /* a client asking much and reading nothing */
        c->close_after = true;
        return;
    }
    out_msg *m = out_new(text, strlen(text), kind);
    if (!m) return;
    if (c->ctrl_tail)
        c->ctrl_tail->next = m;
    else
        c->ctrl_head = m;
    c->ctrl_tail = m;
    c->n_ctrl++;
    lws_callback_on_writable(c->wsi);
}

static void queue_json(client *c, cJSON *o, out_kind kind)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    queue_text(c, text, kind);
    free(text);
    cJSON_Delete(o);
}

static void queue_error(client *c, const char *code, const char *message, bool close)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "type", "error");
        cJSON_AddStringToObject(o, "code", code);
        cJSON_AddStringToObject(o, "message", message);
    }
    queue_json(c, o, OUT_PLAIN);
    if (close) c->close_after = true;
    lws_callback_on_writable(c->wsi);
}

/* {"type":"inference","inference":<view>,"committed_ms":..} with LWS_PRE headroom. */
static unsigned char *render_inference(const inference *inf, double committed_ms, size_t *len)
{
    unsigned char *buf = NULL;
    char *text = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *view = view_inference(inf);
    if (!o || !view || !cJSON_AddStringToObject(o, "type", "inference")) goto fail;
    cJSON_AddItemToObject(o, "inference", view);
    view = NULL;
    if (!(committed_ms > 0 ? cJSON_AddNumberToObject(o, "committed_ms", committed_ms)
                           : cJSON_AddNullToObject(o, "committed_ms")))
        goto fail;
    text = cJSON_PrintUnformatted(o);
    if (!text) goto fail;
    *len = strlen(text);
    buf = malloc(LWS_PRE + *len);
    if (buf) memcpy(buf + LWS_PRE, text, *len);
fail:
    free(text);
    cJSON_Delete(view);
    cJSON_Delete(o);
    return buf;
}

/* ---- the hub: commits in, ring out ---- */

static void on_commit(void *arg, inference *const *committed, size_t n)
{
    live *l = arg;
    int64_t top = 0;
    for (size_t i = 0; i < n; i++)
        if (committed[i]->seq > top) top = committed[i]->seq;
    if (!top) return;
    double now = (double)util_now_us() / 1000.0;
    pthread_mutex_lock(&l->mu);
    if (!l->stopped) {
        if (top > l->committed_seq) l->committed_seq = top;
        if (l->n_commits == COMMITS_MAX) { /* the loop is far behind: keep the newest */
            memmove(l->commits, l->commits + 1, (COMMITS_MAX - 1) * sizeof *l->commits);
            l->n_commits--;
        }
        l->commits[l->n_commits++] = (commit_mark){.seq = top, .ms = now};
        wsloop_wake(l->loop);
    }
    pthread_mutex_unlock(&l->mu);
}

static ring_entry *entry_at(live *l, uint64_t idx)
{
    return &l->ring[idx % RING_CAP];
}

static uint64_t ring_tail(const live *l)
{
    return l->head > RING_CAP ? l->head - RING_CAP : 0;
}

static void stats_add(live *l, const inference *inf, int64_t now_ms);

/* Whether c is to get ring entry e: not deleted since, and passing c's filter. */
static bool wants(const client *c, const ring_entry *e)
{
    return !e->deleted && live_filter_match(&c->filter, e->inf);
}

/* The slow rule: a caught-up client more than LIVE_CLIENT_QUEUE entries behind the head loses
 * the oldest ones; the matching ones are counted and it is told. */
static void enforce_queue(live *l, client *c)
{
    if (c->state != CS_OPEN || !c->in_ring) return;
    if (!c->caught_up) {
        if (l->head - c->ring_idx <= LIVE_CLIENT_QUEUE) c->caught_up = true;
        return;
    }
    while (l->head - c->ring_idx > LIVE_CLIENT_QUEUE) {
        ring_entry *e = entry_at(l, c->ring_idx++);
        c->cursor = e->seq;
        if (wants(c, e)) {
            c->missed++;
            c->missed_reason = "slow_client";
            atomic_fetch_add(&l->n_missed, 1);
        }
    }
}

static void ring_append(live *l, inference *inf, double committed_ms)
{
    size_t len = 0;
    unsigned char *msg = render_inference(inf, committed_ms, &len);
    if (!msg) {
        log_warn("live", "out of memory rendering inference %lld", (long long)inf->seq);
        inference_destroy(inf);
        return;
    }
    ring_entry *e = entry_at(l, l->head);
    if (l->head >= RING_CAP) {
        l->ring_base_seq = e->seq; /* the oldest leaves the ring */
        inference_destroy(e->inf);
        free(e->msg);
    }
    *e = (ring_entry){.seq = inf->seq, .inf = inf, .msg = msg, .len = len};
    l->head++;
}

/* Deletes reported since the last pull: mark them in the ring and tell every client. */
static void hub_deletes(live *l)
{
    pthread_mutex_lock(&l->mu);
    char(*del)[UTIL_UUID_LEN + 1] = l->deleted;
    size_t n = l->n_deleted;
    l->deleted = NULL;
    l->n_deleted = 0;
    pthread_mutex_unlock(&l->mu);
    for (size_t k = 0; k < n; k++) {
        for (uint64_t i = ring_tail(l); i < l->head; i++)
            if (strcmp(entry_at(l, i)->inf->guid, del[k]) == 0) entry_at(l, i)->deleted = true;
        char text[96];
        snprintf(text, sizeof text, "{\"type\":\"deleted\",\"id\":\"%s\"}", del[k]);
        for (client *c = l->clients; c; c = c->next)
            if (c->state == CS_OPEN) queue_text(c, text, OUT_PLAIN);
    }
    free(del);
}

/* Reads everything committed since the last pull into the ring. */
static void hub_pull(live *l)
{
    hub_deletes(l);
    pthread_mutex_lock(&l->mu);
    int64_t target = l->committed_seq;
    commit_mark marks[COMMITS_MAX];
    size_t n_marks = l->n_commits;
    memcpy(marks, l->commits, n_marks * sizeof *marks);
    l->n_commits = 0;
    pthread_mutex_unlock(&l->mu);
    int64_t now_ms = util_now_ms();
    size_t m = 0;
    while (l->fetched_seq < target) {
        store_page page;
        er_rc rc = store_list_after(l->st, l->fetched_seq, PULL_PAGE, &page);
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
            while (m < n_marks && marks[m].seq < inf->seq)
                m++;
            l->fetched_seq = inf->seq;
            stats_add(l, inf, now_ms);
            ring_append(l, inf, m < n_marks ? marks[m].ms : 0); /* takes inf */
        }
        if (i < page.n) l->fetched_seq = target; /* the rest of the range is gone */
        store_page_free(&page);
        for (client *c = l->clients; c; c = c->next)
            enforce_queue(l, c);
    }
    for (client *c = l->clients; c; c = c->next)
        if (c->state == CS_OPEN) lws_callback_on_writable(c->wsi);
}

/* ---- what a client sends next ---- */

/* The next inference message for c (borrowed from the ring, or rendered into *owned), NULL
 * when it has nothing to send now. Advances the cursor past filtered-out rows. */
static const unsigned char *next_inference(live *l, client *c, size_t *len, unsigned char **owned)
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
                ring_entry *e = entry_at(l, c->ring_idx++);
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
            if (store_list_after(l->st, c->cursor, BACKLOG_PAGE, &c->backlog) != ER_OK)
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
                *owned = render_inference(inf, 0, len);
                if (*owned) return *owned;
            }
        }
    }
}

/* Resume: count what matches after since_seq (bounded scan) and place the cursor so that at
 * most LIVE_RESUME_MAX messages are replayed; the rest is reported as missed. */
static void start_resume(live *l, client *c, int64_t since)
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
        if (store_list_after(l->st, cur, 1000, &page) != ER_OK) break;
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

/* ---- periodic messages ---- */

static void stat_count(label_stat *ls, int slot, int64_t minute, double score)
{
    if (ls->minute[slot] != minute) {
        ls->minute[slot] = minute;
        ls->count[slot] = 0;
        ls->sum[slot] = 0;
    }
    ls->count[slot]++;
    ls->sum[slot] += score;
}

/* Count and score sum of ls over the window ending at minute. */
static int64_t stat_sum(const label_stat *ls, int64_t minute, double *sum)
{
    int64_t count = 0;
    *sum = 0;
    for (int s = 0; s < STATS_MINUTES; s++)
        if (ls->minute[s] > minute - STATS_MINUTES) {
            count += ls->count[s];
            *sum += ls->sum[s];
        }
    return count;
}

static void stats_add(live *l, const inference *inf, int64_t now_ms)
{
    int64_t minute = now_ms / 60000;
    int slot = (int)(minute % STATS_MINUTES);
    stat_count(&l->total, slot, minute, inf->top_score);
    for (size_t k = 0; k < inf->n_labels; k++) {
        label_stat *ls = NULL;
        for (size_t i = 0; i < l->n_stats && !ls; i++)
            if (strcmp(l->stats[i].label, inf->labels[k].label) == 0) ls = &l->stats[i];
        if (!ls) {
            if (l->n_stats >= STATS_LABELS_MAX) continue;
            label_stat *grown = realloc(l->stats, (l->n_stats + 1) * sizeof *grown);
            if (!grown) continue;
            l->stats = grown;
            ls = &l->stats[l->n_stats];
            memset(ls, 0, sizeof *ls);
            if (!(ls->label = strdup(inf->labels[k].label))) continue;
            l->n_stats++;
        }
        stat_count(ls, slot, minute, inf->labels[k].score);
    }
}

static cJSON *stats_json(live *l)
{
    int64_t now = util_now_ms(), minute = now / 60000;
    cJSON *o = cJSON_CreateObject();
    cJSON *labels = o ? cJSON_CreateObject() : NULL;
    if (!labels || !cJSON_AddStringToObject(o, "type", "stats") ||
        !cJSON_AddNumberToObject(o, "server_time", (double)now) ||
        !cJSON_AddNumberToObject(o, "window_ms", STATS_MINUTES * 60000.0))
        goto fail;
    double sum = 0;
    if (!cJSON_AddNumberToObject(o, "total", (double)stat_sum(&l->total, minute, &sum))) goto fail;
    for (size_t i = 0; i < l->n_stats; i++) {
        int64_t count = stat_sum(&l->stats[i], minute, &sum);
        if (!count) continue;
        cJSON *e = cJSON_AddObjectToObject(labels, l->stats[i].label);
        if (!e || !cJSON_AddNumberToObject(e, "count", (double)count) ||
            !cJSON_AddNumberToObject(e, "mean_score", sum / (double)count))
            goto fail;
    }
    cJSON_AddItemToObject(o, "labels", labels);
    return o;
fail:
    cJSON_Delete(labels);
    cJSON_Delete(o);
    return NULL;
}

/* {"type":"forwarder","enabled":..} plus the keys below copied from the forwarder's status
 * object, in this order (a missing one as null); NULL when out of memory. Compared as text by
 * fwd_tick, so it changes only when one of these keys does. */
static char *forwarder_text(live *l)
{
    static const char *const keys[] = {"state", "queue_depth", "in_flight",
                                       "dead",  "dropped",     "last_error"};
    char *text = NULL;
    cJSON *status = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "type", "forwarder") ||
        !cJSON_AddBoolToObject(o, "enabled", l->fwd != NULL))
        goto fail;
    if (l->fwd) {
        status = l->fwd->status(l->fwd->ctx);
        if (!status) goto fail;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(status, keys[i]);
            cJSON *copy = v ? cJSON_Duplicate(v, true) : cJSON_CreateNull();
            if (!copy || !cJSON_AddItemToObject(o, keys[i], copy)) {
                cJSON_Delete(copy);
                goto fail;
            }
        }
    }
    text = cJSON_PrintUnformatted(o);
fail:
    cJSON_Delete(status);
    cJSON_Delete(o);
    return text;
}

static live *live_of_sul(lws_sorted_usec_list_t *sul, size_t off)
{
    return (live *)((char *)sul - off);
}

static void fwd_tick(lws_sorted_usec_list_t *sul)
{
    live *l = live_of_sul(sul, offsetof(live, fwd_sul));
    if (wsloop_stopping(l->loop)) return;
    if (l->n_clients) {
        char *text = forwarder_text(l);
        if (text && (!l->fwd_msg || strcmp(text, l->fwd_msg) != 0)) {
            free(l->fwd_msg);
            l->fwd_msg = text;
            text = NULL;
            for (client *c = l->clients; c; c = c->next)
                if (c->state == CS_OPEN) queue_text(c, l->fwd_msg, OUT_FORWARDER);
        }
        free(text);
    }
    lws_sul_schedule(wsloop_context(l->loop), 0, &l->fwd_sul, fwd_tick,
                     (lws_usec_t)FWD_POLL_MS * LWS_US_PER_MS);
}

static void stats_tick(lws_sorted_usec_list_t *sul)
{
    live *l = live_of_sul(sul, offsetof(live, stats_sul));
    if (wsloop_stopping(l->loop)) return;
    if (l->n_clients) {
        cJSON *o = stats_json(l);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        for (client *c = l->clients; c && text; c = c->next)
            if (c->state == CS_OPEN) queue_text(c, text, OUT_STATS);
        free(text);
    }
    lws_sul_schedule(wsloop_context(l->loop), 0, &l->stats_sul, stats_tick,
                     (lws_usec_t)STATS_EVERY_MS * LWS_US_PER_MS);
}

/* ---- client messages ---- */

static void send_hello(live *l, client *c)
{
    static const char *const roles[] = {
        [AUTH_READ] = "read", [AUTH_INGEST] = "ingest", [AUTH_ADMIN] = "admin"};
    cJSON *o = cJSON_CreateObject();
    char *model = NULL;
    if (o) {
        cJSON_AddStringToObject(o, "type", "hello");
        cJSON_AddStringToObject(o, "version", EI_RELAY_VERSION);
        cJSON_AddStringToObject(o, "device", l->device);
        cJSON_AddNumberToObject(o, "server_time", (double)util_now_ms());
        cJSON_AddNumberToObject(o, "last_seq", (double)l->fetched_seq);
        cJSON_AddStringToObject(o, "role", roles[c->role] ? roles[c->role] : "read");
        cJSON *m = store_meta_get(l->st, "model_info", &model) == ER_OK ? cJSON_Parse(model) : NULL;
        if (!cJSON_IsObject(m)) {
            cJSON_Delete(m);
            m = cJSON_CreateNull();
        }
        cJSON_AddItemToObject(o, "model", m);
    }
    free(model);
    queue_json(c, o, OUT_PLAIN);
    if (!l->fwd_msg) l->fwd_msg = forwarder_text(l);
    queue_text(c, l->fwd_msg, OUT_FORWARDER);
    queue_json(c, stats_json(l), OUT_STATS);
}

static void on_auth(live *l, client *c, live_msg *m)
{
    auth_role role = auth_check_token(l->au, m->token);
    if (role == AUTH_NONE) {
        atomic_fetch_add(&l->n_refused, 1);
        log_info("live", "refused a connection: the token is not valid");
        queue_error(c, "unauthorized", "the token is not valid", true);
        return;
    }
    lws_set_timer_usecs(c->wsi, LWS_SET_TIMER_USEC_CANCEL);
    c->role = role;
    c->state = CS_OPEN;
    if (m->has_filter) live_filter_move(&c->filter, &m->filter);
    send_hello(l, c);
    c->cursor = l->fetched_seq;
    if (m->has_since) atomic_fetch_add(&l->n_resumes, 1);
    if (m->has_since && m->since_seq < l->fetched_seq) {
        start_resume(l, c, m->since_seq);
        c->in_ring = false;
    } else {
        c->ring_idx = l->head;
        c->in_ring = true;
        c->caught_up = true;
    }
    lws_callback_on_writable(c->wsi);
}

static void on_message(live *l, client *c, const char *text, size_t len)
{
    live_msg m;
    er_err err = {{0}};
    er_rc rc = live_msg_parse(text, len, &m, &err);
    if (c->state == CS_AUTH) {
        if (rc == ER_OK && m.type == LIVE_MSG_AUTH)
            on_auth(l, c, &m);
        else
            queue_error(c, "unauthorized",
                        rc ? err.msg : "the first message must be {\"type\":\"auth\",...}", true);
        live_msg_free(&m);
        return;
    }
    if (rc) {
        queue_error(c, "bad_request", err.msg, false);
        return;
    }
    switch (m.type) {
    case LIVE_MSG_AUTH:
        queue_error(c, "bad_request", "already authenticated", false);
        break;
    case LIVE_MSG_SUBSCRIBE: {
        live_filter_move(&c->filter, &m.filter);
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "type", "subscribed");
            cJSON_AddItemToObject(o, "filter", live_filter_to_json(&c->filter));
        }
        queue_json(c, o, OUT_PLAIN);
        break;
    }
    case LIVE_MSG_PING: {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "type", "pong");
            cJSON *id = m.ping_id ? cJSON_Parse(m.ping_id) : cJSON_CreateNull();
            cJSON_AddItemToObject(o, "id", id ? id : cJSON_CreateNull());
            cJSON_AddNumberToObject(o, "server_time", (double)util_now_ms());
        }
        queue_json(c, o, OUT_PLAIN);
        break;
    }
    }
    live_msg_free(&m);
}

static void on_receive(live *l, client *c, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_skip = false;
    }
    if (!c->rx_skip && lws_frame_is_binary(wsi)) {
        c->rx_skip = true;
        c->rx_skip_why = "binary frames are not accepted; send JSON text";
    }
    if (!c->rx_skip && len > LIVE_MSG_MAX_BYTES - c->rx_len) {
        c->rx_skip = true;
        c->rx_skip_why = "message over the 65536-byte limit";
    }
    if (!c->rx_skip && len) {
        char *grown = realloc(c->rx, c->rx_len + len);
        if (!grown) {
            c->rx_skip = true;
            c->rx_skip_why = "out of memory";
        } else {
            c->rx = grown;
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return;
    if (c->rx_skip)
        queue_error(c, c->state == CS_AUTH ? "unauthorized" : "bad_request", c->rx_skip_why,
                    c->state == CS_AUTH);
    else
        on_message(l, c, c->rx, c->rx_len);
    c->rx_len = 0;
    c->rx_skip = false;
    free(c->rx); /* messages are rare and small: do not keep the biggest one around */
    c->rx = NULL;
}

/* One write per writable callback, as lws wants: control messages first, then a missed
 * notice, then the next inference. Returns -1 to close. */
static int on_writable(live *l, client *c, struct lws *wsi)
{
    if (c->ctrl_head) {
        out_msg *m = c->ctrl_head;
        c->ctrl_head = m->next;
        if (!c->ctrl_head) c->ctrl_tail = NULL;
        c->n_ctrl--;
        int w = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
        if (w < 0) return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->close_after) {
        static const char why[] = "policy";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    if (c->state != CS_OPEN) return 0;
    if (c->missed) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\":\"missed\",\"count\":%lld,\"reason\":\"%s\"}",
                 (long long)c->missed, c->missed_reason);
        c->missed = 0;
        queue_text(c, text, OUT_PLAIN);
        return 0;
    }
    size_t len = 0;
    unsigned char *owned = NULL;
    const unsigned char *msg = next_inference(l, c, &len, &owned);
    if (!msg) return 0;
    int w = lws_write(wsi, (unsigned char *)msg + LWS_PRE, len, LWS_WRITE_TEXT);
    free(owned);
    if (w < 0) return -1;
    atomic_fetch_add(&l->n_sent, 1);
    lws_callback_on_writable(wsi);
    return 0;
}

/* ---- lws glue ---- */

typedef struct pss {
    client *c;
} pss;

static void client_free(live *l, client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    l->n_clients--;
    atomic_store(&l->n_clients_now, (long long)l->n_clients);
    while (c->ctrl_head) {
        out_msg *m = c->ctrl_head;
        c->ctrl_head = m->next;
        free(m);
    }
    live_filter_free(&c->filter);
    store_page_free(&c->backlog);
    free(c->rx);
    free(c);
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    live *l = vh ? lws_vhost_user(vh) : NULL;
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (l && !wsloop_stopping(l->loop)) hub_pull(l);
        break;
    case LWS_CALLBACK_HTTP: /* plain HTTP on the WebSocket port */
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL)) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
        if (n <= 0 || strcmp(uri, LIVE_PATH) != 0) {
            lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
            return -1;
        }
        break;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        if (!l || !p) return -1;
        client *c = calloc(1, sizeof *c);
        if (!c) return -1;
        c->wsi = wsi;
        c->state = CS_AUTH;
        c->next = l->clients;
        if (l->clients) l->clients->prev = c;
        l->clients = c;
        l->n_clients++;
        atomic_store(&l->n_clients_now, (long long)l->n_clients);
        p->c = c;
        lws_set_timer_usecs(wsi, AUTH_TIMEOUT_US);
        int fd = lws_get_socket_fd(wsi), sndbuf = CLIENT_SNDBUF;
        if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        break;
    }
    case LWS_CALLBACK_TIMER:
        if (l && p && p->c && p->c->state == CS_AUTH) {
            atomic_fetch_add(&l->n_refused, 1);
            queue_error(p->c, "auth_timeout", "no auth message within 5 s", true);
        }
        break;
    case LWS_CALLBACK_RECEIVE:
        if (l && p && p->c) on_receive(l, p->c, wsi, in, len);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (l && p && p->c) return on_writable(l, p->c, wsi);
        break;
    case LWS_CALLBACK_CLOSED:
        if (l && p && p->c) {
            client_free(l, p->c);
            p->c = NULL;
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {.name = "ei-live",
     .callback = on_event,
     .per_session_data_size = sizeof(pss),
     .rx_buffer_size = 4096},
    {.name = NULL},
};

static const uint32_t no_retry[] = {0};
/* Ping a quiet client after 20 s; close it when 40 s pass without a pong or data. */
static const lws_retry_bo_t idle_policy = {
    .retry_ms_table = no_retry,
    .retry_ms_table_count = 1,
    .secs_since_valid_ping = 20,
    .secs_since_valid_hangup = 40,
};

/* ---- lifecycle ---- */

er_rc live_create(const live_deps *d, wsloop *loop, live **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    live *l = calloc(1, sizeof *l);
    if (!l) goto fail;
    pthread_mutex_init(&l->mu, NULL);
    l->st = d->st;
    l->au = d->au;
    l->fwd = d->fwd;
    l->device = d->device;
    l->loop = loop;
    store_info si;
    rc = store_get_info(d->st, &si);
    if (rc) {
        er_fail(err, rc, "live: cannot read the store");
        goto fail;
    }
    l->fetched_seq = l->ring_base_seq = l->committed_seq = si.newest_seq;
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof vi);
    vi.port = d->cfg->ws_port;
    if (d->cfg->bind && strcmp(d->cfg->bind, "0.0.0.0") != 0) {
        snprintf(l->iface, sizeof l->iface, "%s", d->cfg->bind);
        vi.iface = l->iface;
    }
    vi.protocols = protocols;
    vi.vhost_name = "live";
    vi.user = l;
    vi.retry_and_idle_policy = &idle_policy;
    vi.gid = -1;
    vi.uid = -1;
    l->vhost = wsloop_add_vhost(loop, &vi, err);
    if (!l->vhost) { /* err says where it could not listen */
        rc = ER_IO;
        goto fail;
    }
    rc = store_subscribe(d->st, on_commit, l);
    if (rc) {
        er_fail(err, rc, "live: cannot subscribe to commits");
        goto fail;
    }
    lws_sul_schedule(wsloop_context(loop), 0, &l->fwd_sul, fwd_tick,
                     (lws_usec_t)FWD_POLL_MS * LWS_US_PER_MS);
    lws_sul_schedule(wsloop_context(loop), 0, &l->stats_sul, stats_tick,
                     (lws_usec_t)STATS_EVERY_MS * LWS_US_PER_MS);
    log_info("live", "live stream on ws://%s:%d%s", d->cfg->bind ? d->cfg->bind : "0.0.0.0",
             live_port(l), LIVE_PATH);
    *out = l;
    return ER_OK;
fail:
    /* Before the vhost exists nothing refers to l. After it, only a failed subscribe gets
     * here (the store's fixed subscriber slots all taken: a wiring error, caught by every
     * test); the vhost's user then dangles until the context goes, which start-up failing
     * makes happen at once, without serving. */
    live_destroy(l);
    return rc;
}

int live_port(const live *l)
{
    return l && l->vhost ? lws_get_vhost_listen_port(l->vhost) : 0;
}

void live_get_stats(const live *l, live_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!l) return;
    out->clients = atomic_load(&l->n_clients_now);
    out->sent = atomic_load(&l->n_sent);
    out->missed = atomic_load(&l->n_missed);
    out->refused = atomic_load(&l->n_refused);
    out->resumes = atomic_load(&l->n_resumes);
}

void live_notify_deleted(live *l, const char *guid)
{
    if (!l || !guid || strlen(guid) > UTIL_UUID_LEN) return;
    pthread_mutex_lock(&l->mu);
    if (!l->stopped && l->n_deleted < 4096) { /* beyond that the loop is gone: drop */
        char(*grown)[UTIL_UUID_LEN + 1] = realloc(l->deleted, (l->n_deleted + 1) * sizeof *grown);
        if (grown) {
            l->deleted = grown;
            snprintf(l->deleted[l->n_deleted++], UTIL_UUID_LEN + 1, "%s", guid);
            wsloop_wake(l->loop);
        }
    }
    pthread_mutex_unlock(&l->mu);
}

void live_stop(live *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stopped = true;
    pthread_mutex_unlock(&l->mu);
}

void live_destroy(live *l)
{
    if (!l) return;
    while (l->clients) /* normally closed by the loop's destruction already */
        client_free(l, l->clients);
    for (uint64_t i = ring_tail(l); i < l->head; i++) {
        inference_destroy(entry_at(l, i)->inf);
        free(entry_at(l, i)->msg);
    }
    for (size_t i = 0; i < l->n_stats; i++)
        free(l->stats[i].label);
    free(l->stats);
    free(l->fwd_msg);
    free(l->deleted);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
