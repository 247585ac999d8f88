/* runner_ws.c - the "runner-ws" source kind (its row: sources_kind_runner_ws): a libwebsockets
 * client of edge-impulse-linux-runner's preview WebSocket ("url", default ws://127.0.0.1:4912/).
 * Messages go through runner_msg (pairing camera-preview frames with classifications when
 * "images" is true, the default); inferences are stored through sources_commits (in order, each
 * with its outcome; while one waits behind another or a failed commit is retried, reading from
 * the runner stops: TCP pushes back on it); the hello's model
 * info is kept for the API and saved in the store's meta (get_model_info). Reconnects with
 * backoff, 0.5 s doubling to 30 s, and pings an idle runner so a hung one is noticed.
 * Everything but create/cancel/destroy runs on the wsloop thread; create and cancel at setup
 * time only (before wsloop_start), destroy after the loop is destroyed (its close callbacks use
 * the source). Started and stopped by sources.c.
 *
 * One connection at a time per source. A received message is gathered from its fragments into
 * rx (bounded by the session's message limit, checked before anything is buffered), then handed
 * whole to runner_msg. Connect attempts always run from a timer on the loop thread, so a failing
 * connect never recurses into lws from a callback. */
#include "sources/runner_ws.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "sources/runner_msg.h"
#include "sources/sources_internal.h"

#define RWS_RX_CHUNK 65536 /* lws receive buffer; messages larger than this come in pieces */
#define RWS_WARN_EVERY_MS 5000

/* The counters a runner-ws source keeps besides inferences and reconnects, in the order of the
 * kind's counters table. */
enum { C_MESSAGES, C_FRAMES, C_FRAMES_PAIRED, C_UNKNOWN, C_REJECTED, C_N };

typedef struct runner_ws {
    store *st;
    sources_slot *slot; /* shared with the API, see sources_internal.h */
    wsloop *loop;
    struct lws_vhost *vhost;
    char host[256];
    char host_header[272]; /* host:port */
    char path[512];
    int port;
    size_t max_msg; /* message bytes, from the session's frame limit */
    runner_session *session;
    /* loop thread only below */
    struct lws *wsi;            /* the connection; NULL between connections */
    lws_sorted_usec_list_t sul; /* the (re)connect timer */
    bool greeting_due;
    bool got_message; /* this connection delivered something: backoff starts over */
    int64_t backoff_ms;
    char *rx; /* the message being gathered */
    size_t rx_len, rx_cap;
    bool rx_skip; /* the current message is being discarded (too big, binary) */
    const char *skip_why;
    int64_t last_warn_ms;
    uint64_t warns_suppressed;
    bool lost_reported;       /* lost() ran since the last connect attempt began */
    bool attempted;           /* a connect attempt was made: later ones count as reconnects */
    sources_commits *commits; /* the inferences on their way to the store */
    bool paused;              /* rx flow control is off on wsi: inferences wait */
    lws_sorted_usec_list_t retry_sul;
    char last_why[SOURCES_ERROR_MAX]; /* the reason last logged at warn */
} runner_ws;

/* ---- settings ---- */

er_rc runner_ws_parse_url(const char *url, char *host, size_t host_cap, int *port, char *path,
                          size_t path_cap, er_err *err)
{
    static const char scheme[] = "ws://";
    if (!url || strncmp(url, scheme, sizeof scheme - 1) != 0)
        return er_fail(err, ER_CONFIG, "expected a ws:// URL (the runner serves plain WebSocket)");
    const char *h = url + sizeof scheme - 1, *e = h;
    if (*h == '[') { /* [IPv6] */
        e = strchr(h, ']');
        if (!e) return er_fail(err, ER_CONFIG, "unterminated [IPv6 address]");
        h++;
    } else {
        while (*e && *e != ':' && *e != '/')
            e++;
    }
    size_t hl = (size_t)(e - h);
    if (hl == 0 || hl >= host_cap) return er_fail(err, ER_CONFIG, "missing or too long host");
    for (size_t i = 0; i < hl; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr(".-_:", h[i]))
            return er_fail(err, ER_CONFIG, "host has a character a host name cannot have");
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (*e == ']') e++;
    *port = 80;
    if (*e == ':') {
        char *end = NULL;
        long p = strtol(e + 1, &end, 10);
        if (end == e + 1 || p < 1 || p > 65535 || (*end && *end != '/'))
            return er_fail(err, ER_CONFIG, "port must be 1..65535");
        *port = (int)p;
        e = end;
    }
    const char *p = *e ? e : "/";
    if (*p != '/') return er_fail(err, ER_CONFIG, "expected a path after the host");
    if (strlen(p) >= path_cap) return er_fail(err, ER_CONFIG, "path too long");
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return er_fail(err, ER_CONFIG, "path has a space or control character");
    strcpy(path, p);
    return ER_OK;
}

/* Reads conf into r's connection fields and so; name is the source's, for messages. */
static er_rc parse_settings(runner_ws *r, const cJSON *conf, const char *name,
                            runner_session_opts *so, er_err *err)
{
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(conf, "url");
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(conf, "images");
    const cJSON *maxf = cJSON_GetObjectItemCaseSensitive(conf, "max_frame_bytes");
    static const char *const known[] = {"url", "images", "max_frame_bytes"};
    if (sources__known_settings(conf, name, "runner-ws", known, sizeof known / sizeof known[0],
                                err))
        return ER_CONFIG;
    if (url && !cJSON_IsString(url))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".url: expected a ws:// URL", name);
    er_err uerr = {{0}};
    if (runner_ws_parse_url(url ? url->valuestring : "ws://127.0.0.1:4912/", r->host,
                            sizeof r->host, &r->port, r->path, sizeof r->path, &uerr))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".url: %s", name, uerr.msg);
    if (images && !cJSON_IsBool(images))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".images: expected true or false", name);
    so->want_images = !cJSON_IsFalse(images);
    if (maxf && (!cJSON_IsNumber(maxf) || maxf->valuedouble < 1024 ||
                 maxf->valuedouble > 64.0 * 1024 * 1024 ||
                 maxf->valuedouble != (double)(size_t)maxf->valuedouble))
        return er_fail(err, ER_CONFIG,
                       "sources \"%.40s\".max_frame_bytes: expected a whole number of bytes, "
                       "1024..67108864",
                       name);
    so->max_frame_bytes = maxf ? (size_t)maxf->valuedouble : 0;
    size_t frame = so->max_frame_bytes ? so->max_frame_bytes : RUNNER_DEFAULT_MAX_FRAME_BYTES;
    r->max_msg = util_b64_encoded_len(frame) + RUNNER_MSG_OVERHEAD_BYTES;
    snprintf(r->host_header, sizeof r->host_header, strchr(r->host, ':') ? "[%s]:%d" : "%s:%d",
             r->host, r->port);
    return ER_OK;
}

/* The same reading into a scratch source, kept nowhere. */
static er_rc rws_validate(const cJSON *conf, const char *name, er_err *err)
{
    runner_ws scratch;
    runner_session_opts so;
    memset(&scratch, 0, sizeof scratch);
    memset(&so, 0, sizeof so);
    return parse_settings(&scratch, conf, name, &so, err);
}

/* ---- state for the API ---- */

static void publish_counters(runner_ws *r)
{
    runner_session_counters ss;
    runner_session_counters_get(r->session, &ss);
    pthread_mutex_lock(&r->slot->mu);
    sources_status *st = &r->slot->st;
    st->inferences = ss.inferences;
    st->counters[C_MESSAGES] = ss.messages;
    st->counters[C_FRAMES] = ss.frames;
    st->counters[C_FRAMES_PAIRED] = ss.frames_paired;
    st->counters[C_UNKNOWN] = ss.unknown;
    st->counters[C_REJECTED] = ss.rejected;
    pthread_mutex_unlock(&r->slot->mu);
}

/* Bad messages are logged, but a runner sending garbage in a loop must not flood the log. */
static void warn_bad(runner_ws *r, const char *what)
{
    int64_t now = util_now_ms();
    if (r->last_warn_ms && now - r->last_warn_ms < RWS_WARN_EVERY_MS) {
        r->warns_suppressed++;
        return;
    }
    if (r->warns_suppressed)
        log_warn("sources",
                 "source \"%s\": message rejected: %s (and %llu more since the last "
                 "report)",
                 r->slot->st.name, what, (unsigned long long)r->warns_suppressed);
    else
        log_warn("sources", "source \"%s\": message rejected: %s", r->slot->st.name, what);
    r->last_warn_ms = now;
    r->warns_suppressed = 0;
}

/* ---- connection ---- */

static void connect_now(lws_sorted_usec_list_t *sul);

static void schedule_connect(runner_ws *r, int64_t delay_ms)
{
    if (wsloop_stopping(r->loop)) return;
    sources_slot_backoff(r->slot, delay_ms);
    lws_sul_schedule(wsloop_context(r->loop), 0, &r->sul, connect_now,
                     (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

/* After a failed attempt or a lost connection: state, one log line, the next attempt. */
static void lost(runner_ws *r, const char *why)
{
    r->wsi = NULL;
    r->paused = false;
    r->lost_reported = true;
    r->rx_len = 0;
    r->rx_skip = false;
    if (r->got_message) r->backoff_ms = SOURCES_BACKOFF_MIN_MS; /* it worked for a while */
    r->got_message = false;
    if (wsloop_stopping(r->loop)) return;
    /* A runner that stays away is reported once, not every 30 s for hours. */
    log_msg(strcmp(why, r->last_why) ? LOG_WARN : LOG_DEBUG, "sources",
            "source \"%s\": %s (reconnecting in %lld ms)", r->slot->st.name, why,
            (long long)r->backoff_ms);
    snprintf(r->last_why, sizeof r->last_why, "%s", why);
    sources_slot_state(r->slot, "backoff", "%s", why);
    schedule_connect(r, r->backoff_ms);
    r->backoff_ms = sources_backoff_next(r->backoff_ms);
}

static const uint32_t no_retry_table[] = {0};
/* Ping a runner quiet for 10 s, hang up after 30 s without a pong: a hung runner is noticed. */
static const lws_retry_bo_t idle_policy = {
    .retry_ms_table = no_retry_table,
    .retry_ms_table_count = 1,
    .secs_since_valid_ping = 10,
    .secs_since_valid_hangup = 30,
};

static void connect_now(lws_sorted_usec_list_t *sul)
{
    runner_ws *r = (runner_ws *)((char *)sul - offsetof(runner_ws, sul));
    if (wsloop_stopping(r->loop)) return;
    if (r->attempted)
        sources_slot_attempt(r->slot);
    else
        sources_slot_backoff(r->slot, 0);
    r->attempted = true;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = wsloop_context(r->loop);
    ci.vhost = r->vhost;
    ci.address = r->host;
    ci.port = r->port;
    ci.path = r->path;
    ci.host = r->host_header;
    ci.origin = r->host_header;
    ci.ietf_version_or_minus_one = -1;
    ci.local_protocol_name = "ei-runner";
    ci.opaque_user_data = r;
    ci.retry_and_idle_policy = &idle_policy;
    ci.pwsi = &r->wsi;
    /* On an immediate failure lws has either called CLIENT_CONNECTION_ERROR already (which
     * scheduled the retry) or returns NULL without a callback. */
    r->lost_reported = false;
    if (!lws_client_connect_via_info(&ci) && !r->lost_reported)
        lost(r, "cannot start a connection");
}

/* Appends a received piece to the message being gathered, which stays NUL-terminated (cJSON's
 * length-bounded parse may still look one byte past the end); false when it cannot be kept. */
static bool rx_append(runner_ws *r, const void *in, size_t len)
{
    if (len > r->max_msg - r->rx_len) {
        r->skip_why = "message over the size limit";
        return false;
    }
    if (r->rx_len + len + 1 > r->rx_cap) {
        size_t cap = r->rx_cap ? r->rx_cap : RWS_RX_CHUNK;
        while (cap < r->rx_len + len + 1)
            cap = cap > r->max_msg / 2 ? r->max_msg + 1 : cap * 2;
        char *p = realloc(r->rx, cap);
        if (!p) {
            r->skip_why = "out of memory for the message";
            return false;
        }
        r->rx = p;
        r->rx_cap = cap;
    }
    memcpy(r->rx + r->rx_len, in, len);
    r->rx_len += len;
    r->rx[r->rx_len] = '\0';
    return true;
}

/* While an inference is in flight its outcome is looked for this often: the loop cannot be
 * woken for it safely (the store may answer after the loop is gone at stop). */
#define RWS_POLL_MS 2

static void pump_timer(lws_sorted_usec_list_t *sul);

/* Moves the inferences on to the store; reading stops while any waits behind the one in flight
 * (this thread also serves the live stream and the other runners: it never waits itself). */
static void pump(runner_ws *r)
{
    if (wsloop_stopping(r->loop)) return;
    int ms = sources__commits_step(r->commits);
    bool wait = sources__commits_queued(r->commits) > 0;
    if (wait != r->paused && r->wsi) lws_rx_flow_control(r->wsi, wait ? 0 : 1);
    r->paused = wait && r->wsi;
    if (ms < 0 && sources__commits_held(r->commits) > 0) ms = RWS_POLL_MS;
    if (ms >= 0)
        lws_sul_schedule(wsloop_context(r->loop), 0, &r->retry_sul, pump_timer,
                         (lws_usec_t)ms * LWS_US_PER_MS);
    publish_counters(r);
}

static void pump_timer(lws_sorted_usec_list_t *sul)
{
    pump((runner_ws *)((char *)sul - offsetof(runner_ws, retry_sul)));
}

static void emit(void *arg, inference *inf)
{
    runner_ws *r = arg;
    sources__commits_add(r->commits, inf); /* pumped once the message is done */
}

/* A hello changed the model: keep it for the API and for get_model_info. */
static void model_changed(runner_ws *r)
{
    const char *info = runner_session_model_info(r->session);
    if (!info) return;
    /* The one place this thread waits for a commit: once per runner (re)connect. */
    sources_slot_model(r->slot, r->st, info);
    log_info("sources", "source \"%s\": runner hello, model %s", r->slot->st.name, info);
}

static void message_done(runner_ws *r)
{
    if (r->rx_skip) {
        runner_session_reject(r->session);
        warn_bad(r, r->skip_why);
    } else {
        er_err err = {{0}};
        runner_session_counters before, after;
        runner_session_counters_get(r->session, &before);
        if (runner_session_on_message(r->session, r->rx, r->rx_len, emit, r, &err) != ER_OK)
            warn_bad(r, err.msg);
        runner_session_counters_get(r->session, &after);
        if (after.hellos != before.hellos) model_changed(r);
    }
    r->rx_len = 0;
    r->rx_skip = false;
    r->got_message = true;
    pump(r);
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    runner_ws *r = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!r) break;
        r->rx_len = 0;
        r->rx_skip = false;
        sources_slot_state(r->slot, "running", NULL);
        r->last_why[0] = '\0';
        if (sources__commits_queued(r->commits) > 0) { /* still holding: read nothing yet */
            lws_rx_flow_control(wsi, 0);
            r->paused = true;
        }
        log_info("sources", "source \"%s\": connected to the runner at %s:%d%s", r->slot->st.name,
                 r->host, r->port, r->path);
        r->greeting_due = runner_session_greeting(r->session) != NULL;
        if (r->greeting_due) lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (!r || !r->greeting_due) break;
        const char *g = runner_session_greeting(r->session);
        size_t n = strlen(g);
        unsigned char buf[LWS_PRE + 128];
        if (n > sizeof buf - LWS_PRE) return -1;
        memcpy(buf + LWS_PRE, g, n);
        if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n) return -1;
        r->greeting_due = false;
        break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!r) break;
        if (lws_is_first_fragment(wsi)) {
            r->rx_len = 0;
            r->rx_skip = false;
        }
        if (!r->rx_skip && lws_frame_is_binary(wsi)) {
            r->rx_skip = true;
            r->skip_why = "binary frame (the runner sends text)";
        }
        if (!r->rx_skip && !rx_append(r, in, len)) r->rx_skip = true;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) message_done(r);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        if (!r) break;
        char why[SOURCES_ERROR_MAX];
        snprintf(why, sizeof why, "cannot connect to %.80s:%d%.40s: %.*s", r->host, r->port,
                 r->path, in ? (int)strnlen(in, 120) : 7, in ? (const char *)in : "unknown");
        lost(r, why);
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (r) lost(r, "the connection to the runner closed");
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {.name = "ei-runner", .callback = on_event, .rx_buffer_size = RWS_RX_CHUNK},
    {.name = NULL},
};

/* ---- lifecycle ---- */

static void rws_destroy(void *source);

/* Setup time only: adds a vhost and schedules the first connect. */
static er_rc rws_create(const cJSON *conf, const sources_env *env, sources_slot *slot, void **out,
                        er_err *err)
{
    er_rc rc = ER_NOMEM;
    runner_ws *r = calloc(1, sizeof *r);
    if (!r) goto fail;
    r->st = env->st;
    r->slot = slot;
    r->loop = env->loop;
    r->backoff_ms = SOURCES_BACKOFF_MIN_MS;
    runner_session_opts so = {.source = slot->st.name, .device = env->device};
    rc = parse_settings(r, conf, slot->st.name, &so, err);
    if (rc) goto fail;
    rc = runner_session_create(&so, &r->session);
    if (!rc) rc = sources__commits_create(r->st, slot, &r->commits);
    if (rc) {
        er_fail(err, rc, "out of memory");
        goto fail;
    }
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof vi);
    vi.port = CONTEXT_PORT_NO_LISTEN;
    vi.protocols = protocols;
    vi.vhost_name = slot->st.name; /* lives in the slot, which outlives the loop */
    vi.gid = -1;
    vi.uid = -1;
    r->vhost = wsloop_add_vhost(r->loop, &vi, err);
    if (!r->vhost) {
        rc = ER_IO;
        goto fail;
    }
    schedule_connect(r, 0);
    *out = r;
    return ER_OK;
fail:
    rws_destroy(r);
    return rc;
}

/* A start-up failing after this source was created: its timers off the loop, which lives on. */
static void rws_cancel(void *source)
{
    runner_ws *r = source;
    lws_sul_cancel(&r->sul);
    lws_sul_cancel(&r->retry_sul);
}

/* The loop was destroyed first; does not touch lws. */
static void rws_destroy(void *source)
{
    runner_ws *r = source;
    if (!r) return;
    runner_session_destroy(r->session);
    sources__commits_destroy(r->commits); /* drops what the store did not take by the stop */
    free(r->rx);
    free(r);
}

static const sources_counter counters[C_N] = {
    [C_MESSAGES] = {"messages", "Messages received from the runner."},
    [C_FRAMES] = {"frames", "Camera preview frames received from the runner."},
    [C_FRAMES_PAIRED] = {"frames_paired", "Camera preview frames stored with their inference."},
    [C_UNKNOWN] = {"unknown", "Runner messages of an unknown type."},
    [C_REJECTED] = {"rejected", "Runner messages rejected as malformed."},
};

const sources_kind sources_kind_runner_ws = {
    .name = "runner-ws",
    .validate = rws_validate,
    .create = rws_create,
    .cancel = rws_cancel,
    .destroy = rws_destroy,
    .counters = counters,
    .n_counters = C_N,
    .model = true,
};
