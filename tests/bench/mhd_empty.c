/* mhd_empty.c - the libmicrohttpd "empty handler" ceiling for the ingest benchmark (run.sh).
 *
 * A server with the same daemon flags as ei-relay's HTTP module (server/http/http.c): internal
 * polling thread (MHD_USE_AUTO: epoll on Linux), a thread pool of 2, suspend/resume allowed,
 * connection limit 1024, timeout 30 s. Every request's body
 * is read (and counted, so it cannot be optimised away) and answered 201 with a small JSON
 * body. Nothing else is done, so its rate is what the HTTP layer alone can reach on this
 * machine; ei-relay's ingest rate is reported as a fraction of it.
 *
 * Usage: mhd_empty PORT [THREADS]. Binds 127.0.0.1 only, prints "ready PORT" once listening,
 * runs until SIGINT/SIGTERM, then prints the request count. Owned by the benchmark only. */
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

static atomic_uint_fast64_t n_requests;
static atomic_uint_fast64_t n_body_bytes;

/* A per-connection marker so the first call (headers only) is told apart from body calls. */
static int first_call_marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* "Read" the body the way a real handler would: account for it, then consume it. */
        atomic_fetch_add_explicit(&n_body_bytes, *upload_data_size, memory_order_relaxed);
        *upload_data_size = 0;
        return MHD_YES;
    }
    uint_fast64_t n = atomic_fetch_add_explicit(&n_requests, 1, memory_order_relaxed) + 1;
    /* A small answer rendered per request, as a real 201 would be. */
    char json[96];
    int len =
        snprintf(json, sizeof json, "{\"status\":\"stored\",\"seq\":%llu}", (unsigned long long)n);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)len, json, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_CREATED, resp);
    MHD_destroy_response(resp);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mhd_empty PORT [THREADS]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    if (port <= 0 || port > 65535 || threads < 1) {
        fprintf(stderr, "mhd_empty: bad PORT or THREADS\n");
        return 2;
    }
    /* Block the stop signals before MHD starts its threads so only sigwait below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* As server/http/http.c: MHD_USE_AUTO picks epoll on Linux; same pool, limit, timeout. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1024, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_empty: cannot start on port %d\n", port);
        return 1;
    }
    printf("ready %d\n", port);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    printf("requests %llu body_bytes %llu\n", (unsigned long long)atomic_load(&n_requests),
           (unsigned long long)atomic_load(&n_body_bytes));
    return 0;
}
