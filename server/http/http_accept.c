/* http_accept.c - the HTTP server's listening socket and its accept thread (`eir-http-acc`).
 *
 * libmicrohttpd's own pool puts one listening socket in every worker's epoll set; the worker
 * that wakes first accepts up to 11 connections in a row, so a client opening its keep-alive
 * connections at once can land all of them on one worker, which then does every request alone
 * while the other idles (seen: 93 % of the requests on one of two workers). Here one thread
 * accepts and hands each connection to MHD_add_connection, which gives it to the worker of
 * index (fd % http_threads), or the next with room: consecutive connections alternate.
 * The limits stay libmicrohttpd's: MHD_add_connection applies the per-worker share of
 * http_max_connections and the per-address limit across the pool as its own accept does (and
 * closes a refused socket). While the relay holds http_max_connections the thread does not
 * accept (it looks again every HTTP_ACCEPT_FULL_MS), so more clients wait in the listen backlog
 * as they did with libmicrohttpd's accept. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "http/http_internal.h"

#define HTTP_ACCEPT_FULL_MS 10  /* recheck period while at http_max_connections */
#define HTTP_ACCEPT_ERROR_MS 10 /* pause after an accept error (out of descriptors, memory) */

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

er_rc http_accept_listen(http_server *s, const struct sockaddr *addr, socklen_t len,
                         const char *where, er_err *err)
{
    int one = 1;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    /* as libmicrohttpd's own socket: address reuse, and IPv6 only on an IPv6 address */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) goto fail;
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
        goto fail;
    if (bind(fd, addr, len) != 0 || listen(fd, SOMAXCONN) != 0) goto fail;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) goto fail;
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    s->listen_fd = fd;
    return ER_OK;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    return er_fail(err, ER_IO, "cannot listen on %s (%s)", where, strerror(e));
}

static void *accept_main(void *arg)
{
    http_server *s = arg;
    util_thread_name("eir-http-acc", NULL);
    while (!atomic_load(&s->accept_stop)) {
        if (atomic_load(&s->open_conns) >= (int)s->max_conns) {
            pause_ms(HTTP_ACCEPT_FULL_MS);
            continue;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd =
            accept4(s->listen_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (atomic_load(&s->accept_stop)) break;
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
            log_ratelimited(LOG_WARN, "http", "accept", "accepting a connection failed: %s",
                            strerror(errno));
            pause_ms(HTTP_ACCEPT_ERROR_MS);
            continue;
        }
        /* On refusal (a limit, no memory) libmicrohttpd closes fd and logs why. */
        (void)MHD_add_connection(s->daemon, fd, (const struct sockaddr *)&peer, plen);
    }
    return NULL;
}

er_rc http_accept_start(http_server *s, er_err *err)
{
    int e = pthread_create(&s->accept_thread, NULL, accept_main, s);
    if (e) return er_fail(err, ER_NOMEM, "http: cannot start the accept thread: %s", strerror(e));
    s->accept_started = true;
    return ER_OK;
}

void http_accept_stop(http_server *s)
{
    atomic_store(&s->accept_stop, true);
    if (s->listen_fd >= 0) shutdown(s->listen_fd, SHUT_RDWR); /* ends a blocked accept4 */
    if (s->accept_started) pthread_join(s->accept_thread, NULL);
    s->accept_started = false;
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
}
