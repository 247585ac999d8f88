/* http_deadline.c - absolute deadlines for HTTP requests (http_internal.h). libmicrohttpd's
 * connection timeout is an inactivity timer: a client sending one byte every few seconds keeps
 * a connection (and a slot) forever. Here each connection has a deadline by which its request
 * head, and then its body, must be complete; one watchdog thread shuts down the socket of a
 * connection past its deadline, and libmicrohttpd, seeing the end of the stream, closes it.
 *
 * Threads: the open/phase/close calls come from libmicrohttpd's threads; the watchdog is its
 * own thread. Everything is under one mutex. The socket is shut down only while its
 * connection is registered, and libmicrohttpd unregisters it (NOTIFY_CLOSED) before closing
 * the descriptor, so the watchdog never touches a descriptor that was reused. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "http/http_internal.h"

struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    int64_t deadline_ms; /* monotonic; 0 = none (the request is being answered) */
    bool body;           /* the deadline is the body's (else the head's) */
    bool cut;            /* shut down already */
    char peer[INET6_ADDRSTRLEN];
};

struct http_deadlines {
    int64_t head_ms, body_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: a deadline moved earlier, or stop */
    http_conn *conns;
    int64_t wake_ms; /* the deadline the watchdog sleeps until; 0 = none (it waits for a signal) */
    bool stop;
    bool started;
    pthread_t thread;
    atomic_uint_fast64_t n_cut;
};

static void peer_text(const struct sockaddr *sa, char *out, size_t n)
{
    out[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
    if (!out[0]) snprintf(out, n, "?");
}

/* Shuts down every connection past its deadline; returns the earliest deadline left (0 none). */
static int64_t cut_expired(http_deadlines *d, int64_t now)
{
    int64_t next = 0;
    for (http_conn *c = d->conns; c; c = c->next) {
        if (!c->deadline_ms || c->cut) continue;
        if (c->deadline_ms <= now) {
            c->cut = true;
            shutdown(c->fd, SHUT_RDWR);
            atomic_fetch_add_explicit(&d->n_cut, 1, memory_order_relaxed);
            log_ratelimited(LOG_INFO, "http", "deadline",
                            "closed a connection from %s: its request %s was not complete "
                            "within %lld ms",
                            c->peer, c->body ? "body" : "head",
                            (long long)(c->body ? d->body_ms : d->head_ms));
        } else if (!next || c->deadline_ms < next) {
            next = c->deadline_ms;
        }
    }
    return next;
}

static void *watchdog_main(void *arg)
{
    http_deadlines *d = arg;
    util_thread_name("eir-http-dl", NULL);
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        int64_t next = cut_expired(d, util_mono_ms());
        d->wake_ms = next;
        if (!next) {
            pthread_cond_wait(&d->cv, &d->mu);
            continue;
        }
        struct timespec until = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000L};
        pthread_cond_timedwait(&d->cv, &d->mu, &until);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

er_rc http_deadlines_create(int64_t head_ms, int64_t body_ms, http_deadlines **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    pthread_condattr_t ca;
    bool ca_ok = pthread_condattr_init(&ca) == 0;
    http_deadlines *d = calloc(1, sizeof *d);
    if (!d || !ca_ok) goto fail;
    d->head_ms = head_ms;
    d->body_ms = body_ms;
    pthread_mutex_init(&d->mu, NULL);
    /* util_mono_ms is CLOCK_MONOTONIC: the waits use the same clock */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    if (pthread_create(&d->thread, NULL, watchdog_main, d) != 0) {
        rc = er_fail(err, ER_INTERNAL, "cannot start the HTTP deadline thread");
        goto fail;
    }
    d->started = true;
    pthread_condattr_destroy(&ca);
    *out = d;
    return ER_OK;
fail:
    if (ca_ok) pthread_condattr_destroy(&ca);
    http_deadlines_destroy(d);
    return rc;
}

void http_deadlines_destroy(http_deadlines *d)
{
    if (!d) return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    /* libmicrohttpd closed every connection before this (NOTIFY_CLOSED freed them) */
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

uint64_t http_deadlines_cut(http_deadlines *d)
{
    return d ? atomic_load_explicit(&d->n_cut, memory_order_relaxed) : 0;
}

/* Sets c's deadline ms from now (0: none) under the mutex. The watchdog is woken only when the
 * new deadline is earlier than the one it sleeps until: every request moves its connection's
 * deadline twice, and a wake-up (futex, a scan of every connection) per move cost more CPU
 * than the request's own work. A deadline that moved later is found when the watchdog wakes
 * for the old one, so the watchdog runs about once per head/body timeout. */
static void set_deadline(http_deadlines *d, http_conn *c, int64_t ms, bool body)
{
    pthread_mutex_lock(&d->mu);
    c->deadline_ms = ms ? util_mono_ms() + ms : 0;
    c->body = body;
    if (ms && (!d->wake_ms || c->deadline_ms < d->wake_ms)) {
        d->wake_ms = c->deadline_ms; /* no second signal before the watchdog has looked */
        pthread_cond_signal(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
}

http_conn *http_deadlines_open(http_deadlines *d, int fd, const struct sockaddr *peer)
{
    http_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL; /* this connection has only libmicrohttpd's idle timeout */
    c->fd = fd;
    peer_text(peer, c->peer, sizeof c->peer);
    pthread_mutex_lock(&d->mu);
    c->next = d->conns;
    if (d->conns) d->conns->prev = c;
    d->conns = c;
    pthread_mutex_unlock(&d->mu);
    set_deadline(d, c, d->head_ms, false);
    return c;
}

void http_deadlines_phase(http_deadlines *d, http_conn *c, http_phase phase)
{
    if (!c) return;
    switch (phase) {
    case HTTP_PHASE_HEAD:
        set_deadline(d, c, d->head_ms, false);
        break;
    case HTTP_PHASE_BODY:
        set_deadline(d, c, d->body_ms, true);
        break;
    case HTTP_PHASE_ANSWER:
        set_deadline(d, c, 0, false);
        break;
    }
}

void http_deadlines_close(http_deadlines *d, http_conn *c)
{
    if (!c) return;
    pthread_mutex_lock(&d->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&d->mu);
    free(c);
}
