/* ingest_loop.c - an EXPERIMENT for issue 13 (not the product): how fast durable JSON ingest
 * could be if the relay read its ingest connections with an event loop of its own instead of
 * libmicrohttpd's suspend/resume. One epoll thread (edge-triggered, connections never leave the
 * epoll set) reads POST /api/v1/inferences with a JSON body, checks the bearer token, normalizes
 * with the relay's own normalize_json, renders the answer's tail with view_render_tail and queues
 * the inference with store_try_put_async; the store's done callback (writer thread) lists the
 * finished requests and writes an eventfd once per batch; the loop then answers each with the
 * relay's 201 (view_render: the same body) in one send. The store is the relay's, with
 * synchronous=FULL (each 201 after its group commit), as run.sh's row 2.
 *
 * Deliberately missing (the product would need them): multipart, chunked bodies, the route table,
 * roles, the limits and deadlines, 4xx/5xx beyond the few below, HEAD, pipelining beyond what
 * the buffer holds. So it bounds the gain from above: its rate is what the loop design can reach
 * at most on this machine, not a rate the relay has.
 *
 * Build (after a Release build of the eirelay_core target in BUILD):
 *   cc -std=c11 -O2 -D_GNU_SOURCE -I server tests/bench/ingest_loop.c BUILD/libeirelay_core.a \
 *      $(pkg-config --cflags --libs libmicrohttpd sqlite3 libcjson vips) -lpthread -lm
 * Run: ingest_loop DB PORT TOKEN (until SIGTERM or SIGINT; then prints the answers, the commits
 * and its CPU per answer). run.sh runs it as row 5 with EI_BENCH_LOOP=1. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "ingest/normalize.h"
#include "model/view.h"
#include "store/store.h"

#define BUF_CAP 65536

typedef struct conn {
    int fd;
    bool waiting;    /* a put in flight: its answer comes from the done callback */
    bool closed;     /* the peer went away while waiting: free when the put is done */
    size_t len;      /* bytes in buf */
    char *view_tail; /* owned: the answer's tail, rendered before the put */
    store_put_result put;
    struct conn *next; /* in the done list */
    char buf[BUF_CAP];
} conn;

static store *g_store;
static const char *g_token;
static int g_efd;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static conn *g_done_head, *g_done_tail;
static long long g_answered;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void on_done(void *arg, const store_put_result *res)
{
    conn *c = arg;
    c->put = *res;
    c->next = NULL;
    pthread_mutex_lock(&g_mu);
    bool kick = g_done_head == NULL;
    if (g_done_tail)
        g_done_tail->next = c;
    else
        g_done_head = c;
    g_done_tail = c;
    pthread_mutex_unlock(&g_mu);
    if (kick) {
        uint64_t one = 1;
        if (write(g_efd, &one, sizeof one) < 0) perror("eventfd");
    }
}

static void send_all(conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* an experiment: a full socket buffer is not handled */
        p += w;
        n -= (size_t)w;
    }
}

static void answer_error(conn *c, const char *status)
{
    char h[160];
    int n = snprintf(h, sizeof h, "HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n", status);
    send_all(c, h, (size_t)n);
}

/* The value of header name in the head [p, end), or NULL; *vlen its length. */
static const char *header(const char *p, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *line = memchr(p, '\n', (size_t)(end - p)); line && line + 1 < end;
         line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
        const char *s = line + 1;
        if ((size_t)(end - s) > nl && s[nl] == ':' && strncasecmp(s, name, nl) == 0) {
            const char *v = s + nl + 1;
            while (v < end && *v == ' ')
                v++;
            const char *e = memchr(v, '\r', (size_t)(end - v));
            *vlen = (size_t)((e ? e : end) - v);
            return v;
        }
    }
    return NULL;
}

/* Takes every complete request in c->buf while no put is in flight. */
static void process(conn *c)
{
    while (!c->waiting) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return;
        size_t head = (size_t)(end + 4 - c->buf), vl = 0, tl = 0;
        const char *cl = header(c->buf, end + 2, "Content-Length", &vl);
        const char *auth = header(c->buf, end + 2, "Authorization", &tl);
        size_t body = cl ? strtoul(cl, NULL, 10) : 0;
        if (head + body > BUF_CAP) {
            answer_error(c, "413 Content Too Large");
            c->len = 0;
            return;
        }
        if (c->len < head + body) return; /* need more */
        bool ok_line = strncmp(c->buf, "POST /api/v1/inferences ", 24) == 0;
        bool ok_token = auth && tl == 7 + strlen(g_token) && strncmp(auth, "Bearer ", 7) == 0 &&
                        memcmp(auth + 7, g_token, strlen(g_token)) == 0;
        inference *inf = NULL;
        er_err err;
        normalize_opts no = {.device = "bench", .source = "http", .now_ms = util_now_ms()};
        if (!ok_line) {
            answer_error(c, "404 Not Found");
        } else if (!ok_token) {
            answer_error(c, "401 Unauthorized");
        } else if (normalize_json(c->buf + head, body, &no, &inf, &err) != ER_OK) {
            answer_error(c, "400 Bad Request");
        } else {
            c->view_tail = view_render_tail(inf);
            c->waiting = true;
            if (store_try_put_async(g_store, inf, on_done, c) != ER_OK) {
                c->waiting = false;
                free(c->view_tail);
                c->view_tail = NULL;
                answer_error(c, "503 Service Unavailable");
            }
        }
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
    }
}

static void conn_close(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->waiting)
        c->closed = true; /* the done callback still holds it */
    else
        free(c);
}

static void on_readable(int ep, conn *c)
{
    for (;;) {
        if (c->len == BUF_CAP) return; /* full: taken once the answer is out */
        ssize_t r = recv(c->fd, c->buf + c->len, BUF_CAP - c->len, 0);
        if (r > 0) {
            c->len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        conn_close(ep, c);
        return;
    }
    process(c);
}

static void on_answers(void)
{
    uint64_t v;
    if (read(g_efd, &v, sizeof v) < 0 && errno != EAGAIN) perror("eventfd");
    pthread_mutex_lock(&g_mu);
    conn *c = g_done_head;
    g_done_head = g_done_tail = NULL;
    pthread_mutex_unlock(&g_mu);
    while (c) {
        conn *next = c->next;
        c->waiting = false;
        if (c->closed) {
            free(c->view_tail);
            free(c);
        } else if (c->put.rc != ER_OK) {
            free(c->view_tail);
            c->view_tail = NULL;
            answer_error(c, "500 Internal Server Error");
            process(c);
        } else {
            char *text = view_render(c->put.guid, c->put.seq, c->put.ts, c->view_tail);
            free(c->view_tail);
            c->view_tail = NULL;
            size_t n = strlen(text);
            char *out = malloc(n + 256);
            int h = snprintf(out, 256,
                             "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                             "Location: /api/v1/inferences/%s\r\nContent-Length: %zu\r\n\r\n",
                             c->put.guid, n);
            memcpy(out + h, text, n);
            send_all(c, out, (size_t)h + n);
            free(out);
            free(text);
            g_answered++;
            process(c);
        }
        c = next;
    }
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s DB PORT TOKEN\n", argv[0]);
        return 2;
    }
    g_token = argv[3];
    store_opts o = {.path = argv[1], .sync_full = true};
    er_err err;
    if (store_create(&o, &g_store, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 128)) {
        perror("listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    g_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    ev.data.ptr = &g_efd;
    epoll_ctl(ep, EPOLL_CTL_ADD, g_efd, &ev);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    double cpu0 = cpu_s();
    while (!g_stop) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                                             .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
            } else if (evs[i].data.ptr == &g_efd) {
                on_answers();
            } else {
                on_readable(ep, evs[i].data.ptr);
            }
        }
    }
    double cpu = cpu_s() - cpu0;
    long long n = g_answered;
    store_info info;
    store_get_info(g_store, &info);
    printf("ingest_loop: %lld answered, process CPU %.1f us per answer, %lld commits (avg batch "
           "%.1f)\n",
           n, n ? cpu * 1e6 / (double)n : 0.0, (long long)info.commits,
           info.commits ? (double)g_answered / (double)info.commits : 0.0);
    fflush(stdout);
    _exit(0); /* an experiment: connections and the store are left to the OS */
}
