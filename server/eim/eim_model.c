/* eim_model.c - one running model: start (spawn, socket, hello, shared memory), the requests
 * (classify over shared memory or JSON, set_threshold) with their replies matched by id under a
 * deadline, and stop. See eim.h for the protocol.
 *
 * The eim_model owns its process (eim__proc), the connected socket, the framer, the mapped
 * shared memory, the request buffer and the info; it belongs to one thread at a time. A
 * timeout, a dead model or a broken protocol marks it broken: only stop is left. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "eim/eim_internal.h"

#define MAX_FEATURES (64u * 1024u * 1024u)
#define MODEL_REQUEST_MAX (32u * 1024u * 1024u) /* the model's receive buffer */
#define CONNECT_RETRY_MS 10 /* a socket bound but not listening yet refuses: try again */
#define EXIT_WAIT_MS 500    /* after the connection closed, how long the exit status may take */

struct eim_model {
    char *name;
    eim__proc proc;
    int sock;
    int cancel_fd;
    int start_timeout_ms, stop_grace_ms;
    eim_framer *framer;
    int64_t next_id;
    eim_model_info info;
    float *shm; /* the mapped features, shm_bytes long; NULL: JSON classify */
    size_t shm_bytes;
    char *req; /* the request being sent */
    size_t req_len, req_cap;
    bool broken;
    char rbuf[65536];
};

/* ---- requests ---- */

static er_rc reserve(eim_model *m, size_t extra)
{
    if (m->req_len + extra <= m->req_cap) return ER_OK;
    size_t cap = m->req_cap ? m->req_cap : 4096;
    while (cap < m->req_len + extra)
        cap *= 2;
    char *r = realloc(m->req, cap);
    if (!r) return ER_NOMEM;
    m->req = r;
    m->req_cap = cap;
    return ER_OK;
}

/* Appends printf output; the request is rebuilt from req_len 0 for each request. */
static er_rc put(eim_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static er_rc put(eim_model *m, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp || reserve(m, (size_t)n)) return ER_NOMEM;
    memcpy(m->req + m->req_len, tmp, (size_t)n);
    m->req_len += (size_t)n;
    return ER_OK;
}

/* A number as JSON.stringify writes it: the shortest text that reads back the same double
 * (non-finite numbers become null, as in JavaScript). */
static er_rc put_number(eim_model *m, double v)
{
    if (!isfinite(v)) return put(m, "null");
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    return put(m, "%s", tmp);
}

static void put_uint(eim_model *m, uint32_t v) /* room reserved by the caller */
{
    char d[10];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        m->req[m->req_len++] = d[--n];
}

/* {"classify":[...],"id":n}\n or, with shared memory, the features written there first. */
static er_rc build_classify(eim_model *m, const uint32_t *pix, const float *flt, size_t n,
                            int64_t id, er_err *err)
{
    m->req_len = 0;
    if (m->shm) {
        if (n > m->shm_bytes / sizeof(float))
            return er_fail(err, ER_SHAPE, "%zu features do not fit the model's shared memory (%zu)",
                           n, m->shm_bytes / sizeof(float));
        for (size_t i = 0; i < n; i++)
            m->shm[i] = pix ? (float)pix[i] : flt[i];
        return put(m, "{\"classify_shm\":{\"elements\":%zu},\"id\":%lld}\n", n, (long long)id)
                   ? er_fail(err, ER_NOMEM, "out of memory")
                   : ER_OK;
    }
    if (n > MODEL_REQUEST_MAX / 4) /* most pixels take 4 or more bytes: surely over */
        return er_fail(err, ER_TOOBIG, "%zu features are over the model's %u MiB", n,
                       MODEL_REQUEST_MAX >> 20);
    /* 10 digits and a comma per pixel; floats go through put_number */
    if (reserve(m, 64 + (pix ? n * 11 : 0)) || put(m, "{\"classify\":["))
        return er_fail(err, ER_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (pix) {
            if (i) m->req[m->req_len++] = ',';
            put_uint(m, pix[i]);
        } else if ((i && put(m, ",")) || put_number(m, flt[i])) {
            return er_fail(err, ER_NOMEM, "out of memory");
        }
    }
    if (put(m, "],\"id\":%lld}\n", (long long)id)) return er_fail(err, ER_NOMEM, "out of memory");
    if (m->req_len >= MODEL_REQUEST_MAX) /* the model would give up (and exit) on it */
        return er_fail(err, ER_TOOBIG, "a classify of %zu features is over the model's %u MiB", n,
                       MODEL_REQUEST_MAX >> 20);
    return ER_OK;
}

/* ---- replies ---- */

/* The model closed the connection or could not be written to: its exit status and output. */
static er_rc model_gone(eim_model *m, const char *what, er_err *err)
{
    char how[40], out[140];
    eim__proc_reap(&m->proc, EXIT_WAIT_MS);
    eim__proc_describe(&m->proc, how, sizeof how);
    eim__proc_tail(&m->proc, out, sizeof out);
    return er_fail(err, ER_IO, "the model %s (%s): %s", what, how, out);
}

/* One reply text: ER_OK (the reply to id, in *reply), ER_AGAIN (an older reply, dropped),
 * ER_INVALID (the model's error answer), ER_IO (not a reply to anything sent). */
static er_rc match(const char *text, size_t len, int64_t id, const char *what, cJSON **reply,
                   er_err *err)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "id");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "success");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    er_rc rc = ER_OK;
    if (!cJSON_IsObject(j) || !util_utf8_valid(text, len))
        rc = er_fail(err, ER_IO, "the model sent something that is not a JSON object in UTF-8");
    else if (rid && !cJSON_IsNumber(rid))
        rc = er_fail(err, ER_IO, "the model sent a reply with an id that is not a number");
    else if (rid && rid->valuedouble < (double)id)
        rc = ER_AGAIN; /* the answer to a request given up on */
    else if (rid && rid->valuedouble > (double)id)
        rc = er_fail(err, ER_IO, "the model answered request %.0f, which was never sent",
                     rid->valuedouble);
    else if (!cJSON_IsTrue(ok)) /* an error; without an id it answers what is in flight */
        rc = er_fail(err, ER_INVALID, "the model refused %s: %.180s", what,
                     cJSON_IsString(e) ? e->valuestring : "no reason given");
    if (rc == ER_OK)
        *reply = j;
    else
        cJSON_Delete(j);
    return rc;
}

/* Feeds n received bytes to the framer; the first reply that settles request id decides. */
static er_rc take(eim_model *m, size_t n, int64_t id, const char *what, cJSON **reply, char **raw,
                  er_err *err)
{
    er_rc result = ER_AGAIN;
    for (size_t off = 0; off < n;) {
        size_t used = 0, len = 0;
        const char *text = NULL;
        er_err ferr;
        er_rc rc = eim_framer_feed(m->framer, m->rbuf + off, n - off, &used, &text, &len, &ferr);
        off += used;
        if (rc == ER_AGAIN) break;
        if (rc != ER_OK) return er_fail(err, ER_IO, "the model broke the protocol: %s", ferr.msg);
        cJSON *r = NULL;
        if (result != ER_AGAIN) { /* one request in flight: nothing else may come */
            log_warn("eim", "%s: dropped an unexpected reply of the model: %.80s", m->name, text);
            continue;
        }
        rc = match(text, len, id, what, &r, err);
        if (rc == ER_OK && raw && !(*raw = strdup(text))) {
            cJSON_Delete(r);
            return er_fail(err, ER_NOMEM, "out of memory");
        }
        if (rc == ER_OK) *reply = r;
        result = rc;
    }
    return result;
}

/* Sends the request in m->req and waits for the reply to id until timeout_ms: see
 * eim_model_classify for the codes. raw (may be NULL) gets a copy of the reply's text. */
static er_rc exchange(eim_model *m, int64_t id, const char *what, int timeout_ms, cJSON **reply,
                      char **raw, er_err *err)
{
    int64_t deadline = util_mono_ms() + timeout_ms;
    size_t sent = 0;
    er_rc rc = ER_AGAIN;
    *reply = NULL;
    while (rc == ER_AGAIN) {
        int64_t left = deadline - util_mono_ms();
        if (left <= 0) {
            rc = er_fail(err, ER_AGAIN, "no answer to %s from the model within %d ms", what,
                         timeout_ms);
            break;
        }
        struct pollfd fds[3] = {{.fd = m->sock, .events = POLLIN}};
        nfds_t nfds = 1;
        if (sent < m->req_len) fds[0].events |= POLLOUT;
        if (m->cancel_fd > 0) fds[nfds++] = (struct pollfd){.fd = m->cancel_fd, .events = POLLIN};
        if (m->proc.out_fd >= 0)
            fds[nfds++] = (struct pollfd){.fd = m->proc.out_fd, .events = POLLIN};
        if (poll(fds, nfds, (int)left) < 0) {
            if (errno == EINTR) continue;
            rc = er_fail(err, ER_IO, "poll: %s", strerror(errno));
            break;
        }
        if (m->cancel_fd > 0 && fds[1].revents) {
            rc = er_fail(err, ER_CLOSED, "stopping");
            break;
        }
        eim__proc_drain(&m->proc); /* a model blocked on a full output pipe would hang */
        if ((fds[0].revents & POLLOUT) && sent < m->req_len) {
            ssize_t w =
                send(m->sock, m->req + sent, m->req_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) sent += (size_t)w;
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                rc = model_gone(m, "stopped reading its socket", err);
                break;
            }
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = recv(m->sock, m->rbuf, sizeof m->rbuf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            rc = model_gone(m, "closed its connection", err);
        else if (n > 0)
            rc = take(m, (size_t)n, id, what, reply, raw, err);
    }
    if (rc != ER_OK && rc != ER_INVALID) m->broken = true;
    return rc;
}

/* ---- start ---- */

static er_rc connect_socket(eim_model *m, int64_t deadline, er_err *err)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, m->proc.sock, strlen(m->proc.sock) + 1);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return er_fail(err, ER_IO, "socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            m->sock = fd;
            return ER_OK;
        }
        int e = errno;
        close(fd);
        if (e != ECONNREFUSED && e != ENOENT && e != EAGAIN && e != EINTR)
            return er_fail(err, ER_IO, "cannot connect to the model's socket: %s", strerror(e));
        if (eim__proc_reap(&m->proc, 0)) return model_gone(m, "exited before it accepted", err);
        if (util_mono_ms() >= deadline)
            return er_fail(err, ER_AGAIN, "cannot connect to the model's socket: %s", strerror(e));
        if (eim__proc_pause(&m->proc, CONNECT_RETRY_MS, m->cancel_fd))
            return er_fail(err, ER_CLOSED, "stopping");
    }
}

/* Maps the shared memory the model offered; on any failure the model is used over JSON, as
 * the runner does by default. */
static void map_shm(eim_model *m)
{
    const eim_model_info *in = &m->info;
    struct stat st;
    int fd = shm_open(in->shm_name, O_RDWR, 0);
    void *p = MAP_FAILED;
    if (fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size >= in->shm_size_bytes)
        p = mmap(NULL, in->shm_size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        log_warn("eim", "%s: cannot use the model's shared memory %s (%s): classifying over JSON",
                 m->name, in->shm_name, fd < 0 ? strerror(errno) : "too small or not mappable");
    } else {
        m->shm = p;
        m->shm_bytes = in->shm_size_bytes;
    }
    if (fd >= 0) close(fd);
}

static er_rc hello(eim_model *m, int64_t deadline, er_err *err)
{
    cJSON *reply = NULL;
    char *raw = NULL;
    int64_t id = m->next_id++;
    m->req_len = 0;
    int left = (int)(deadline - util_mono_ms());
    er_rc rc = put(m, "{\"hello\":1,\"id\":%lld}\n", (long long)id);
    if (rc == ER_OK) rc = exchange(m, id, "hello", left > 0 ? left : 1, &reply, &raw, err);
    if (rc == ER_OK) rc = eim_info_parse(raw, strlen(raw), &m->info, err);
    cJSON_Delete(reply);
    free(raw);
    return rc;
}

static er_rc classify(eim_model *m, const uint32_t *pix, const float *flt, size_t n, int timeout_ms,
                      cJSON **reply_out, er_err *err);

/* The runner's GPU warm-up: a classify of zeros, allowed an hour (loading a model into the GPU
 * can take minutes the first time). */
static er_rc warm_up(eim_model *m, er_err *err)
{
    cJSON *reply = NULL;
    size_t n = m->info.input_features_count;
    uint32_t *zeros = calloc(n ? n : 1, sizeof *zeros);
    if (!zeros) return er_fail(err, ER_NOMEM, "out of memory");
    log_info("eim", "%s: loading the model into the GPU (minutes the first time)", m->name);
    er_rc rc = classify(m, zeros, NULL, n, EIM_WARMUP_TIMEOUT_MS, &reply, err);
    cJSON_Delete(reply);
    free(zeros);
    return rc;
}

er_rc eim_model_start(const eim_opts *o, eim_model **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    eim_model *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m) return er_fail(err, ER_NOMEM, "out of memory");
    m->sock = -1;
    m->proc.pidfd = m->proc.out_fd = -1;
    m->next_id = 1;
    m->cancel_fd = o->cancel_fd;
    m->start_timeout_ms = o->start_timeout_ms > 0 ? o->start_timeout_ms : EIM_START_TIMEOUT_MS;
    m->stop_grace_ms = o->stop_grace_ms > 0 ? o->stop_grace_ms : EIM_STOP_GRACE_MS;
    int64_t deadline = util_mono_ms() + m->start_timeout_ms, connect_by;
    if (!(m->name = strdup(o->name ? o->name : "eim")) ||
        eim_framer_create(EIM_MAX_REPLY_BYTES, &m->framer)) {
        er_fail(err, rc, "out of memory");
        goto fail;
    }
    if ((rc = eim__proc_spawn(&m->proc, o->model_file, o->tmp_dir, err)) ||
        (rc = eim__proc_wait_socket(&m->proc, deadline, m->cancel_fd, err)))
        goto fail;
    connect_by = util_mono_ms() + EIM_CONNECT_TIMEOUT_MS;
    if ((rc = connect_socket(m, connect_by < deadline ? connect_by : deadline, err)) ||
        (rc = hello(m, deadline, err)))
        goto fail;
    if (m->info.shm_name && !o->no_shm) map_shm(m);
    if (m->info.gpu_warmup && (rc = warm_up(m, err))) goto fail;
    log_info("eim", "%s: model %s (%s, %dx%dx%d, %s) started, pid %d, features over %s", m->name,
             m->info.project_name, m->info.model_type, m->info.width, m->info.height,
             m->info.channels, m->info.resize_mode, (int)m->proc.pid,
             m->shm ? "shared memory" : "JSON");
    *out = m;
    return ER_OK;
fail:
    if (m->proc.tail_len) {
        char all[EIM_OUTPUT_TAIL + 1];
        eim__proc_tail(&m->proc, all, sizeof all);
        log_warn("eim", "%s: the model printed: %s", m->name ? m->name : "eim", all);
    }
    eim_model_stop(m);
    return rc;
}

/* ---- the model's calls ---- */

const eim_model_info *eim_model_get_info(const eim_model *m)
{
    return &m->info;
}

bool eim_model_uses_shm(const eim_model *m)
{
    return m->shm != NULL;
}

int eim_model_pid(const eim_model *m)
{
    return (int)m->proc.pid;
}

const char *eim_model_socket_path(const eim_model *m)
{
    return m->proc.sock;
}

static er_rc classify(eim_model *m, const uint32_t *pix, const float *flt, size_t n, int timeout_ms,
                      cJSON **reply_out, er_err *err)
{
    *reply_out = NULL;
    if (m->broken) return er_fail(err, ER_IO, "the model must be restarted after an error");
    if (n > MAX_FEATURES) return er_fail(err, ER_TOOBIG, "%zu features are too many", n);
    int64_t id = m->next_id++;
    er_rc rc = build_classify(m, pix, flt, n, id, err);
    if (rc) return rc;
    return exchange(m, id, "classify", timeout_ms > 0 ? timeout_ms : EIM_REPLY_TIMEOUT_MS,
                    reply_out, NULL, err);
}

er_rc eim_model_classify(eim_model *m, const uint32_t *pixels, size_t n, int timeout_ms,
                         cJSON **reply_out, er_err *err)
{
    return classify(m, pixels, NULL, n, timeout_ms, reply_out, err);
}

er_rc eim_model_classify_float(eim_model *m, const float *features, size_t n, int timeout_ms,
                               cJSON **reply_out, er_err *err)
{
    return classify(m, NULL, features, n, timeout_ms, reply_out, err);
}

/* The index of the first threshold block with id block_id (-1: none), and whether it is the
 * runner's own block, which the runner appends last to the model's blocks. */
static int find_block(const eim_model_info *in, int block_id, bool *runners)
{
    cJSON *t = cJSON_Parse(in->thresholds);
    int n = cJSON_GetArraySize(t), found = -1, i = 0;
    for (const cJSON *b = cJSON_IsArray(t) ? t->child : NULL; b && found < 0; b = b->next, i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "id");
        if (cJSON_IsNumber(id) && id->valuedouble == block_id) found = i;
    }
    cJSON_Delete(t);
    *runners = found >= 0 && found == n - 1 && block_id == EIM_RUNNER_BLOCK_ID && in->sensor == 3 &&
               strcmp(in->model_type, "classification") == 0;
    return found;
}

er_rc eim_model_set_threshold(eim_model *m, int block_id, const char *key, double value,
                              er_err *err)
{
    bool runners = false;
    cJSON *reply = NULL;
    if (m->broken) return er_fail(err, ER_IO, "the model must be restarted after an error");
    if (!key || !key[0] ||
        strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_-") != strlen(key) ||
        strlen(key) > 64 || !isfinite(value))
        return er_fail(err, ER_INVALID,
                       "set_threshold: a key of letters, digits, _ and - and a "
                       "finite value are needed");
    if (find_block(&m->info, block_id, &runners) < 0)
        return er_fail(err, ER_NOTFOUND, "the model has no threshold block %d", block_id);
    if (!runners) {
        int64_t id = m->next_id++;
        m->req_len = 0;
        er_rc rc = put(m, "{\"set_threshold\":{\"id\":%d,\"%s\":", block_id, key);
        if (!rc) rc = put_number(m, value);
        if (!rc) rc = put(m, "},\"id\":%lld}\n", (long long)id);
        if (rc) return er_fail(err, ER_NOMEM, "out of memory");
        if ((rc = exchange(m, id, "set_threshold", m->start_timeout_ms, &reply, NULL, err)))
            return rc;
        cJSON_Delete(reply);
    }
    return eim__info_set_threshold(&m->info, block_id, key, value, err);
}

int eim_model_stop(eim_model *m)
{
    if (!m) return -1;
    int status = eim__proc_stop(&m->proc, m->stop_grace_ms);
    if (m->sock >= 0) close(m->sock);
    if (m->shm) munmap(m->shm, m->shm_bytes);
    /* The model unlinks its shared memory on the way out; one that was killed cannot. */
    if (m->info.shm_name) shm_unlink(m->info.shm_name);
    eim_info_free(&m->info);
    eim_framer_destroy(m->framer);
    free(m->req);
    free(m->name);
    free(m);
    return status;
}
