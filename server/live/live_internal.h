/* live_internal.h - what the live stream's files share, not for other modules: the stream's
 * state (struct live), a client session, the ring, and the calls between
 *   live.c        lifecycle, the public API and the lws callback that dispatches to the others;
 *   live_hub.c    the store's commits into the ring, and what each client sends next;
 *   live_client.c client sessions: auth, their messages, the send queue, writable/receive;
 *   live_ticks.c  the periodic forwarder and stats messages, and the stats counting;
 *   live_conns.c  the port's connection limits and the upgrade deadline;
 *   live_proto.c  pure parse/render of client messages (live_proto.h).
 *
 * Threads: everything runs on the wsloop thread except lv_hub_on_commit / lv_hub_on_deleted
 * (the store's writer thread: the commit hook also counts the stats) and the report part's prom
 * (any thread), which touch only the fields under mu or the atomics. struct live owns the ring, the
 * clients and the stats; a client owns its queue, its filter and its backlog page. */
#ifndef EI_LIVE_LIVE_INTERNAL_H
#define EI_LIVE_LIVE_INTERNAL_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ratelimit.h"
#include "core/util.h"
#include "live/live.h"
#include "live/live_proto.h"

#define LV_RING_CAP 1024    /* most entries; live_ring_bytes bounds their memory */
#define LV_STATS_MINUTES 60 /* the stats window: the last hour, in minute buckets */
#define LV_COMMITS_MAX 256  /* commit times remembered between two pulls */
#define LV_DELETED_MAX 4096 /* deleted ids remembered between two pulls */
#define LV_MARKS_MAX 1024   /* commit times kept for the messages (at least the ring's rows) */

typedef struct lv_ring_entry {
    int64_t seq;
    bool deleted;       /* deleted since: no longer served */
    inference *inf;     /* owned: guid, labels, source and top score for the filters (its
                           result, timing and info texts are freed once rendered) */
    unsigned char *msg; /* owned: LWS_PRE bytes, then the message text */
    size_t len;
    size_t bytes; /* what the entry holds, against ring_max_bytes */
} lv_ring_entry;

typedef enum lv_out_kind { LV_OUT_PLAIN, LV_OUT_FORWARDER, LV_OUT_STATS } lv_out_kind;

typedef struct lv_out_msg {
    struct lv_out_msg *next;
    lv_out_kind kind;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
} lv_out_msg;

typedef enum lv_client_state { LV_CS_AUTH, LV_CS_OPEN } lv_client_state;

/* One connection, from the upgrade to the close (live_client.c creates and frees it). */
typedef struct lv_client {
    struct lv_client *next, *prev;
    struct lws *wsi;
    lv_client_state state;
    auth_role role;
    live_filter filter;
    int64_t cursor;    /* last seq considered */
    bool in_ring;      /* ring_idx is valid for cursor */
    uint64_t ring_idx; /* next ring entry to consider */
    bool caught_up;    /* within LIVE_CLIENT_QUEUE of the head once: the slow rule applies */
    int64_t missed;
    const char *missed_reason; /* static */
    lv_out_msg *ctrl_head, *ctrl_tail;
    size_t n_ctrl;
    bool close_after; /* close once the control queue is written */
    char *rx;         /* a client message being gathered from fragments */
    size_t rx_len;
    bool rx_skip;
    const char *rx_skip_why;
    store_page backlog; /* rows read from the cache, being sent */
    size_t backlog_pos;
} lv_client;

typedef struct lv_conn lv_conn; /* one accepted connection (live_conns.c) */

typedef struct lv_label_stat {
    char *label;
    int64_t minute[LV_STATS_MINUTES];
    int64_t count[LV_STATS_MINUTES];
    double sum[LV_STATS_MINUTES];
} lv_label_stat;

typedef struct lv_commit_mark {
    int64_t seq; /* newest seq of one commit */
    double ms;   /* its commit time, epoch ms */
} lv_commit_mark;

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
    lv_commit_mark commits[LV_COMMITS_MAX];
    size_t n_commits;
    char (*deleted)[UTIL_UUID_LEN + 1]; /* guids deleted since the last pull (owned array) */
    size_t n_deleted;
    bool cleared; /* clear_cache ran since the last pull: check the ring against the cache */
    lv_label_stat *stats; /* counted by the commit hook, read by the loop's stats messages */
    size_t n_stats;
    lv_label_stat total; /* every inference, whatever its labels (label unused) */
    /* loop thread only */
    lv_commit_mark marks[LV_MARKS_MAX]; /* the last commits' times: mark i at i % LV_MARKS_MAX */
    uint64_t marks_head;                /* marks ever kept */
    int64_t marks_floor;                /* rows up to this seq have no known commit time */
    int64_t fetched_seq;
    int64_t ring_base_seq;
    uint64_t head; /* entries ever appended; entry i lives in ring[i % LV_RING_CAP] */
    uint64_t tail; /* the oldest entry still held: tail..head-1 (tail >= head - LV_RING_CAP) */
    size_t ring_bytes, ring_max_bytes; /* held by tail..head-1, and the bound (live_ring_bytes) */
    lv_ring_entry ring[LV_RING_CAP];
    lv_client *clients;
    size_t n_clients;
    char *fwd_msg; /* the last forwarder message text (rendered on change) */
    lws_sorted_usec_list_t fwd_sul, stats_sul;
    lv_conn *conns; /* owned: conns_max slots, every accepted TCP connection */
    size_t conns_max, conns_per_ip, n_conns;
    size_t conn_pending;   /* the slot reserved by the last accept, until its wsi is named */
    int64_t handshake_ms;  /* the upgrade must be complete this long after the accept */
    ratelimit *connects;   /* owned: connection attempts per address (ws_connect_*) */
    ratelimit *auth_fails; /* borrowed (live_deps): failed authentications per address */
    bool limit_loopback;   /* rate_limit_loopback */
    lws_sorted_usec_list_t hs_sul;
    /* written on the loop thread, read by HTTP threads (the report part, live.c) */
    atomic_llong n_clients_now, n_sent, n_missed, n_refused, n_resumes, n_conn_refused;
    atomic_llong ring_n_now, ring_bytes_now; /* the ring's entries and bytes (gauges) */
};

/* ---- the hub (live_hub.c) ---- */

/* The store's commit hook (writer thread): records the newest seq and wakes the loop. */
void lv_hub_on_commit(void *arg, inference *const *committed, size_t n);
/* The store's delete hook (writer thread): records the ids for the next pull, which tells the
 * clients ({"type":"deleted","id"}) and stops serving them. */
void lv_hub_on_deleted(void *arg, const char *const *guids, size_t n);
/* The store's clear hook (writer thread): the next pull drops from the ring what the clear
 * removed from the cache, telling the clients as for a delete. */
void lv_hub_on_cleared(void *arg);
/* Deletes and commits reported since the last pull into the ring; wakes the clients. */
void lv_hub_pull(live *l);
/* The next inference message for c (borrowed from the ring, or rendered into *owned), NULL
 * when it has nothing to send now. */
const unsigned char *lv_hub_next(live *l, lv_client *c, size_t *len, unsigned char **owned);
/* Places a resuming client's cursor after since (at most LIVE_RESUME_MAX to replay). */
void lv_hub_resume(live *l, lv_client *c, int64_t since);
/* Frees the ring's entries (live_destroy). */
void lv_hub_free(live *l);

/* ---- client sessions (live_client.c) ---- */

/* A new session for an upgraded connection, linked into l->clients, waiting for its auth
 * message; NULL when out of memory. Freed by lv_client_free. */
lv_client *lv_client_open(live *l, struct lws *wsi);
void lv_client_free(live *l, lv_client *c);
/* The auth timer fired: refuse a client still not authenticated. */
void lv_client_timer(live *l, lv_client *c);
void lv_client_receive(live *l, lv_client *c, struct lws *wsi, const void *in, size_t len);
/* One write; -1 to close the connection. */
int lv_client_writable(live *l, lv_client *c, struct lws *wsi);
/* Queues a copy of text (NULL: nothing); a pending forwarder or stats message is replaced. */
void lv_queue_text(lv_client *c, const char *text, lv_out_kind kind);

/* ---- periodic messages (live_ticks.c) ---- */

/* Schedules the forwarder poll and the stats tick on the loop (live_create). */
void lv_ticks_start(live *l);
/* Queues the current forwarder and stats messages for a client just authenticated. */
void lv_ticks_hello(live *l, lv_client *c);
/* Counts a newly committed inference in the stats window (the commit hook, under mu). */
void lv_stats_add(live *l, const inference *inf, int64_t now_ms);
/* Frees the stats and the last forwarder message (live_destroy). */
void lv_ticks_free(live *l);

/* ---- connection limits (live_conns.c) ---- */

/* The slots for max connections, per_ip from one address, the upgrade within handshake_ms;
 * the connection rate per address from cfg (ws_connect_*, rate_limit_loopback). */
er_rc lv_conns_init(live *l, const config *cfg, int max);
/* FILTER_NETWORK_CONNECTION: counts the accepted descriptor; false to refuse it (a limit or
 * the address's connection rate). */
bool lv_conns_accept(live *l, int fd);
/* SERVER_NEW_CLIENT_INSTANTIATED: the wsi of the descriptor just accepted; starts its
 * upgrade deadline. */
void lv_conns_bind(live *l, struct lws *wsi);
/* ESTABLISHED: the upgrade is done, the deadline no longer applies. */
void lv_conns_upgraded(live *l, struct lws *wsi);
/* The rate-limit key of wsi's client address; false when the limits do not apply to it (an
 * exempt loopback client, or a connection not counted). */
bool lv_conns_peer(live *l, const struct lws *wsi, ratelimit_key *key);
/* WSI_DESTROY: frees the connection's slot (once; unknown wsis are ignored). */
void lv_conns_release(live *l, struct lws *wsi);
void lv_conns_free(live *l);

#endif
