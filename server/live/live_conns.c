/* live_conns.c - the WebSocket port's connection limits (live_internal.h): at most max
 * connections at once, at most per_ip from one address, and an absolute deadline for the HTTP
 * upgrade, and at most ws_connect_per_s new connections per second from one address (a token
 * bucket of core/ratelimit, loopback exempt unless rate_limit_loopback). Everything here runs
 * on the wsloop thread.
 *
 * How libwebsockets 4.1 reports a connection's life (lib/roles/listen/ops-listen.c,
 * lib/core-net/adopt.c, close.c): FILTER_NETWORK_CONNECTION on the listener with the accepted
 * descriptor (non-zero: lws closes it, no wsi ever exists); then, synchronously in the same
 * call, the wsi is made and SERVER_NEW_CLIENT_INSTANTIATED names it (descriptor set); every
 * wsi that got that far ends in exactly one WSI_DESTROY, whether it upgraded or not. An
 * adoption that fails before INSTANTIATED leaves its slot unbound: the next accept (the only
 * place a slot is reserved) reclaims it first. So each accepted descriptor is released once.
 *
 * The deadline is our own timer: lws_set_timeout is the wsi's one timeout, which lws re-arms
 * itself while it reads a request head (HOLDING_AH, keep-alive), so bytes trickled in would
 * move it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "live/live_internal.h"

struct lv_conn {
    struct lws *wsi; /* NULL while the adoption is under way (pending) */
    bool used;
    bool upgraded;          /* the deadline no longer applies */
    int64_t deadline_ms;    /* util_mono_ms() clock */
    unsigned char addr[16]; /* the peer's address (IPv4 in its first 4 bytes) */
    char text[INET6_ADDRSTRLEN];
    ratelimit_key key; /* the peer's rate-limit key */
    bool limited;      /* the rate limits apply to the peer (not an exempt loopback) */
};

/* The peer of fd as comparable bytes, as text and as its rate-limit key; false when it cannot
 * be read. */
static bool peer_of(int fd, unsigned char addr[16], char *text, size_t n, ratelimit_key *key,
                    bool *loopback)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(addr, 0, 16);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return false;
    if (!ratelimit_key_addr((const struct sockaddr *)&ss, key, loopback)) return false;
    if (ss.ss_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *)&ss)->sin_addr;
        memcpy(addr, a, sizeof *a);
        return inet_ntop(AF_INET, a, text, (socklen_t)n) != NULL;
    }
    const struct in6_addr *a = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
    memcpy(addr, a, 16);
    return inet_ntop(AF_INET6, a, text, (socklen_t)n) != NULL;
}

er_rc lv_conns_init(live *l, const config *cfg, int max)
{
    l->conns = calloc((size_t)(max > 0 ? max : 1), sizeof *l->conns);
    if (!l->conns) return ER_NOMEM;
    l->conns_max = max > 0 ? (size_t)max : 1;
    int per_ip = cfg->ws_max_connections_per_ip;
    l->conns_per_ip = per_ip > 0 ? (size_t)per_ip : 1;
    l->handshake_ms = cfg->ws_handshake_timeout_ms;
    l->conn_pending = SIZE_MAX;
    l->limit_loopback = cfg->rate_limit_loopback;
    ratelimit_opts o = {
        .slots = RATELIMIT_SLOTS, .per_s = cfg->ws_connect_per_s, .burst = cfg->ws_connect_burst};
    return ratelimit_create(&o, &l->connects);
}

/* The timer needs no cancel: it went with the context, and does nothing once the loop stops. */
void lv_conns_free(live *l)
{
    free(l->conns);
    l->conns = NULL;
    ratelimit_destroy(l->connects);
    l->connects = NULL;
}

static void release(live *l, size_t i)
{
    l->conns[i].used = false;
    l->conns[i].wsi = NULL;
    l->n_conns--;
}

bool lv_conns_accept(live *l, int fd)
{
    if (l->conn_pending != SIZE_MAX) { /* the previous adoption failed before it was named */
        if (l->conns[l->conn_pending].used && !l->conns[l->conn_pending].wsi)
            release(l, l->conn_pending);
        l->conn_pending = SIZE_MAX;
    }
    unsigned char addr[16];
    char text[INET6_ADDRSTRLEN] = "?";
    size_t from_peer = 0, free_slot = SIZE_MAX;
    ratelimit_key key;
    bool loopback, limited;
    int64_t retry_ms;
    if (!peer_of(fd, addr, text, sizeof text, &key, &loopback)) return false;
    limited = !loopback || l->limit_loopback;
    if (limited && !ratelimit_take(l->connects, &key, util_mono_ms(), &retry_ms)) {
        atomic_fetch_add(&l->n_conn_refused, 1);
        log_ratelimited(LOG_INFO, "live", "ws-rate",
                        "refused a WebSocket connection from %s: it opens connections faster "
                        "than ws_connect_per_s (retry in %lld s)",
                        text, ratelimit_retry_s(retry_ms));
        return false;
    }
    for (size_t i = 0; i < l->conns_max; i++) {
        if (!l->conns[i].used) {
            if (free_slot == SIZE_MAX) free_slot = i;
        } else if (memcmp(l->conns[i].addr, addr, sizeof addr) == 0) {
            from_peer++;
        }
    }
    if (free_slot == SIZE_MAX || from_peer >= l->conns_per_ip) {
        atomic_fetch_add(&l->n_conn_refused, 1);
        log_ratelimited(LOG_INFO, "live", "ws-limit",
                        "refused a WebSocket connection from %s: %s (%zu)", text,
                        free_slot == SIZE_MAX ? "ws_max_connections reached"
                                              : "ws_max_connections_per_ip reached",
                        free_slot == SIZE_MAX ? l->conns_max : l->conns_per_ip);
        return false;
    }
    lv_conn *c = &l->conns[free_slot];
    *c = (lv_conn){.used = true};
    memcpy(c->addr, addr, sizeof addr);
    memcpy(c->text, text, sizeof text);
    c->key = key;
    c->limited = limited;
    l->n_conns++;
    l->conn_pending = free_slot;
    return true;
}

static void hs_tick(lws_sorted_usec_list_t *sul);

/* (Re)arms the timer for the earliest deadline left, if any. */
static void arm(live *l)
{
    int64_t next = 0;
    for (size_t i = 0; i < l->conns_max; i++) {
        const lv_conn *c = &l->conns[i];
        if (c->used && c->wsi && !c->upgraded && (!next || c->deadline_ms < next))
            next = c->deadline_ms;
    }
    if (!next) {
        lws_sul_cancel(&l->hs_sul);
        return;
    }
    int64_t in_ms = next - util_mono_ms();
    lws_sul_schedule(wsloop_context(l->loop), 0, &l->hs_sul, hs_tick,
                     in_ms > 0 ? (lws_usec_t)in_ms * LWS_US_PER_MS : 1);
}

static void hs_tick(lws_sorted_usec_list_t *sul)
{
    live *l = (live *)((char *)sul - offsetof(live, hs_sul));
    if (wsloop_stopping(l->loop)) return;
    int64_t now = util_mono_ms();
    for (size_t i = 0; i < l->conns_max; i++) {
        lv_conn *c = &l->conns[i];
        if (!c->used || !c->wsi || c->upgraded || c->deadline_ms > now) continue;
        log_ratelimited(LOG_INFO, "live", "ws-deadline",
                        "closed a WebSocket connection from %s: its upgrade was not complete "
                        "within %lld ms",
                        c->text, (long long)l->handshake_ms);
        c->upgraded = true; /* not again, whatever the close does */
        /* The socket first: over WSS lws would otherwise wait up to 5 s for the client's part of
         * a TLS shutdown, a client that may be stalling on purpose. */
        shutdown(lws_get_socket_fd(c->wsi), SHUT_RDWR);
        /* closes now: WSI_DESTROY releases slot i (the loop goes on over a flag) */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
    arm(l);
}

void lv_conns_bind(live *l, struct lws *wsi)
{
    if (l->conn_pending == SIZE_MAX) return; /* not one we counted */
    lv_conn *c = &l->conns[l->conn_pending];
    l->conn_pending = SIZE_MAX;
    c->wsi = wsi;
    c->deadline_ms = util_mono_ms() + l->handshake_ms;
    if (!lws_dll2_is_detached(&l->hs_sul.list)) return; /* an earlier deadline is armed */
    arm(l);
}

static lv_conn *find(live *l, const struct lws *wsi)
{
    for (size_t i = 0; wsi && i < l->conns_max; i++)
        if (l->conns[i].used && l->conns[i].wsi == wsi) return &l->conns[i];
    return NULL;
}

void lv_conns_upgraded(live *l, struct lws *wsi)
{
    lv_conn *c = find(l, wsi);
    if (c) c->upgraded = true;
}

bool lv_conns_peer(live *l, const struct lws *wsi, ratelimit_key *key)
{
    lv_conn *c = find(l, wsi);
    if (!c || !c->limited) return false;
    *key = c->key;
    return true;
}

void lv_conns_release(live *l, struct lws *wsi)
{
    lv_conn *c = find(l, wsi);
    if (c) release(l, (size_t)(c - l->conns));
}
