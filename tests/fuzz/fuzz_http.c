/* fuzz_http.c - the HTTP request handling in-process: each input is the raw bytes a client
 * sends on one connection (one or more pipelined requests), written to the real server
 * (libmicrohttpd with the project's routes, auth, query and framing checks, static files,
 * ingest with its store on a temp file) on a loopback port of this process, the write side
 * then shut, and everything the server answers read until it closes.
 *
 * Set up once (the first input): a temp directory with web/index.html and the database, the
 * three roles' tokens below, one stored inference with a JPEG (id STORED_ID) so the image,
 * thumbnail and delete paths have a row to find. Torn down at exit.
 *
 * Checks beyond "no crash, leak or sanitizer report":
 * - the server closes every connection within 3 s of the client's side being shut. Not always
 *   at once: libmicrohttpd 0.9.75 sometimes misses the end of a connection whose client shut
 *   its side with a keep-alive request or in the middle of a body, and keeps it to the head
 *   or body deadline (1 s here; 10 s and 60 s by default), which is what this checks holds;
 * - the first answer has a well-formed status line; when it is JSON and an error (>= 400)
 *   it is exactly the contract's {"error":{"code","message"}}, valid UTF-8;
 * - nothing is stored or deleted unless some answer is 201 or 204 (row count and newest seq).
 * Inputs over 64 KB are cut there (the body limit is 64 KB). A DELETE that removed the stored
 * row is followed by putting it back. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "config/config.h"
#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "media/synth.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (64 * 1024)
#define ANSWER_MAX (4 * 1024 * 1024)
#define STORED_ID "00000000-0000-4000-8000-000000000001"

/* the tokens the corpus uses (16+ characters, as the loader requires) */
static const char config_fmt[] =
    "{\"http_port\":0,\"bind\":\"127.0.0.1\",\"db_path\":\"%s/db/fuzz.db\","
    "\"web_root\":\"%s/web\",\"db_synchronous\":\"normal\",\"max_body_bytes\":65536,"
    "\"cache_max_age\":0,\"http_threads\":2,\"http_header_timeout_ms\":1000,\"http_body_timeout_"
    "ms\":1000,\"allow_root\":true,"
    "\"tokens\":["
    "{\"token\":\"fuzz-read-token-0123456789\",\"role\":\"read\"},"
    "{\"token\":\"fuzz-ingest-token-0123456789\",\"role\":\"ingest\"},"
    "{\"token\":\"fuzz-admin-token-0123456789\",\"role\":\"admin\"}]}";

static struct {
    char dir[64];
    config cfg;
    bool cfg_loaded;
    store *st;
    auth *au;
    http_server *http;
    uint16_t port;
} g;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void teardown(void)
{
    http_server_destroy(g.http);
    store_destroy(g.st);
    auth_destroy(g.au);
    if (g.cfg_loaded) config_free(&g.cfg);
    if (g.dir[0]) nftw(g.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, er_rc rc, const er_err *err)
{
    fprintf(stderr, "fuzz_http: %s: %s %s\n", what, er_rc_name(rc), err ? err->msg : "");
    abort();
}

/* One stored inference with an image, for the {id} routes to find. */
static void put_stored(void)
{
    inference *inf = inference_create();
    uint8_t *jpeg = NULL;
    size_t len = 0;
    synth_rect box = {8, 8, 16, 16, 200, 40, 40};
    if (!inf || synth_jpeg(64, 48, &box, 1, 1, 80, &jpeg, &len)) die("synth", ER_NOMEM, NULL);
    snprintf(inf->guid, sizeof inf->guid, "%s", STORED_ID);
    inf->ts = 1764000000000;
    inference_set_str(&inf->device, "fuzz");
    inference_set_str(&inf->source, "fuzz");
    inf->kind = INFERENCE_CLASSIFICATION;
    inference_set_str(&inf->result_json, "{\"classification\":{\"cat\":0.9}}");
    inference_add_label(inf, "cat", 0.9);
    inf->image.data = jpeg;
    inf->image.len = len;
    snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
    inf->image.width = 64;
    inf->image.height = 48;
    store_put_result res;
    er_rc rc = store_put(g.st, inf, &res);
    if (rc || (res.rc && !res.duplicate)) die("store_put", rc ? rc : res.rc, NULL);
}

static void setup(void)
{
    er_err err = {{0}};
    char path[128], json[1024];
    snprintf(g.dir, sizeof g.dir, "/tmp/ei-fuzz-http-XXXXXX");
    if (!mkdtemp(g.dir)) die("mkdtemp", ER_IO, NULL);
    atexit(teardown);
    snprintf(path, sizeof path, "%s/web", g.dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/web/index.html", g.dir);
    FILE *f = fopen(path, "w");
    if (!f) die("index.html", ER_IO, NULL);
    fputs("<!doctype html><title>fuzz</title>\n", f);
    fclose(f);
    log_set_level(LOG_ERROR); /* an error line per refused input would be most of the time */
    int n = snprintf(json, sizeof json, config_fmt, g.dir, g.dir);
    er_rc rc = config_load_json(&g.cfg, json, (size_t)n, &err);
    if (rc) die("config", rc, &err);
    g.cfg_loaded = true;
    store_opts so = {.path = g.cfg.db_path, .sync_full = false};
    if ((rc = store_create(&so, &g.st, &err))) die("store", rc, &err);
    if ((rc = auth_create(&g.cfg, &g.au, &err))) die("auth", rc, &err);
    http_deps deps = {.cfg = &g.cfg,
                      .st = g.st,
                      .au = g.au,
                      .device = "fuzz",
                      .started_ms = util_now_ms(),
                      .ws_port = 0};
    if ((rc = http_server_create(&deps, &g.http, &err))) die("http", rc, &err);
    g.port = http_server_port(g.http);
    put_stored();
}

/* What nothing but a 201 or 204 may change. */
static void snapshot(int64_t *rows, int64_t *seq)
{
    store_info in;
    if (store_get_info(g.st, &in)) die("store_get_info", ER_DB, NULL);
    *rows = in.rows;
    *seq = in.newest_seq;
}

/* Sends the input on a new connection, shuts the write side, reads until the server closes.
 * Returns the answer's length in buf. */
static size_t exchange(const uint8_t *data, size_t size, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g.port)};
    struct timeval tv = {.tv_sec = 3};
    size_t got = 0;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect", ER_IO, NULL);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* the server may answer and close before taking everything: a failed send ends it */
    for (size_t off = 0; off < size;) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue; /* libFuzzer's own timer signals */
        if (w <= 0) break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    int64_t deadline = util_mono_ms() + 3000;
    for (;;) {
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r == 0) break;
        if (r < 0 && errno == EINTR && util_mono_ms() < deadline) continue;
        if (r < 0) {
            if (errno == ECONNRESET) break;
            fprintf(stderr, "fuzz_http: the server kept the connection open (%s)\n",
                    strerror(errno));
            abort();
        }
        got += (size_t)r;
        if (got == cap - 1) break; /* enough to check; closing resets the rest */
    }
    close(fd);
    buf[got] = '\0';
    return got;
}

/* The first answer: its status line, and a JSON error body of the contract's shape. */
static void check_first(const char *buf, size_t len, bool head)
{
    if (len == 0) return; /* closed without an answer (libmicrohttpd on a broken head) */
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*1[01] %3d ", &status) != 1 || status < 100 || status > 599) {
        fprintf(stderr, "fuzz_http: bad status line: %.80s\n", buf);
        abort();
    }
    const char *end = strstr(buf, "\r\n\r\n");
    if (!end || head || status < 400 || !strcasestr(buf, "\r\nContent-Type: application/json"))
        return;
    const char *cl = strcasestr(buf, "\r\nContent-Length: ");
    if (!cl || cl > end) return;
    size_t body_len = strtoul(cl + 18, NULL, 10);
    const char *body = end + 4;
    if ((size_t)(buf + len - body) < body_len) return; /* cut at ANSWER_MAX */
    cJSON *doc = cJSON_ParseWithLength(body, body_len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    bool ok = util_utf8_valid(body, body_len) && cJSON_GetArraySize(doc) == 1 &&
              cJSON_GetArraySize(e) == 2 && cJSON_IsString(code) && cJSON_IsString(msg) &&
              code->valuestring[0] && msg->valuestring[0];
    cJSON_Delete(doc);
    if (!ok) {
        fprintf(stderr, "fuzz_http: %d answer is not the error contract: %.*s\n", status,
                (int)body_len, body);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *answer;
    if (!g.http) {
        setup();
        answer = malloc(ANSWER_MAX);
        if (!answer) abort();
    }
    if (size > INPUT_MAX) size = INPUT_MAX;
    int64_t rows0, seq0, rows1, seq1;
    snapshot(&rows0, &seq0);
    size_t len = exchange(data, size, answer, ANSWER_MAX);
    check_first(answer, len, size >= 5 && memcmp(data, "HEAD ", 5) == 0);
    snapshot(&rows1, &seq1);
    /* one-sided: an answer text may hold "201" anywhere; without any, nothing may change */
    bool deleted = strstr(answer, "HTTP/1.1 204 ") != NULL;
    bool may_change = deleted || strstr(answer, "HTTP/1.1 201 ");
    if (!may_change && (rows1 != rows0 || seq1 != seq0)) {
        fprintf(stderr, "fuzz_http: rows %lld -> %lld, newest seq %lld -> %lld without a 201/204\n",
                (long long)rows0, (long long)rows1, (long long)seq0, (long long)seq1);
        abort();
    }
    if (deleted) put_stored(); /* the next inputs find the row with its image again */
    return 0;
}
