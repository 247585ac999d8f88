/* live_client.c - the live stream's client sessions: opening one at the upgrade, the auth
 * message and the hello, the client's other messages (subscribe, ping), gathering them from
 * fragments, the control-message queue, and the one write per writable callback (control
 * messages, then a missed notice, then the next inference from the hub). Loop thread only.
 * A session owns its queued messages, its filter, its backlog page and its receive buffer;
 * struct live owns the list of sessions. */
#include "live/live_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/util.h"

#define CTRL_MAX 64 /* queued non-inference messages per client */
#define AUTH_TIMEOUT_US (5 * LWS_USEC_PER_SEC)
/* Kernel send buffer per client. Linux grows an unset one to megabytes, which would hide
 * thousands of messages from the LIVE_CLIENT_QUEUE bound (and hold that much kernel memory
 * per stuck client); 64 KiB still covers a burst of ~100 messages. */
#define CLIENT_SNDBUF (64 * 1024)

/* ---- the send queue ---- */

static lv_out_msg *out_new(const char *text, size_t len, lv_out_kind kind)
{
    lv_out_msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) return NULL;
    m->next = NULL;
    m->kind = kind;
    m->len = len;
    memcpy(m->buf + LWS_PRE, text, len);
    return m;
}

/* Queues a control message; a pending forwarder or stats message is replaced by a newer one
 * so a client that does not read holds at most one of each. */
void lv_queue_text(lv_client *c, const char *text, lv_out_kind kind)
{
    if (!text) return;
    if (kind != LV_OUT_PLAIN)
        for (lv_out_msg **pp = &c->ctrl_head; *pp; pp = &(*pp)->next)
            if ((*pp)->kind == kind) {
                lv_out_msg *fresh = out_new(text, strlen(text), kind);
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
    lv_out_msg *m = out_new(text, strlen(text), kind);
    if (!m) return;
    if (c->ctrl_tail)
        c->ctrl_tail->next = m;
    else
        c->ctrl_head = m;
    c->ctrl_tail = m;
    c->n_ctrl++;
    lws_callback_on_writable(c->wsi);
}

static void queue_json(lv_client *c, cJSON *o, lv_out_kind kind)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    lv_queue_text(c, text, kind);
    free(text);
    cJSON_Delete(o);
}

static void queue_error(lv_client *c, const char *code, const char *message, bool close)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "type", "error");
        cJSON_AddStringToObject(o, "code", code);
        cJSON_AddStringToObject(o, "message", message);
    }
    queue_json(c, o, LV_OUT_PLAIN);
    if (close) c->close_after = true;
    lws_callback_on_writable(c->wsi);
}

/* ---- sessions ---- */

lv_client *lv_client_open(live *l, struct lws *wsi)
{
    lv_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->wsi = wsi;
    c->state = LV_CS_AUTH;
    c->next = l->clients;
    if (l->clients) l->clients->prev = c;
    l->clients = c;
    l->n_clients++;
    atomic_store(&l->n_clients_now, (long long)l->n_clients);
    lws_set_timer_usecs(wsi, AUTH_TIMEOUT_US);
    int fd = lws_get_socket_fd(wsi), sndbuf = CLIENT_SNDBUF;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return c;
}

void lv_client_free(live *l, lv_client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    l->n_clients--;
    atomic_store(&l->n_clients_now, (long long)l->n_clients);
    while (c->ctrl_head) {
        lv_out_msg *m = c->ctrl_head;
        c->ctrl_head = m->next;
        free(m);
    }
    live_filter_free(&c->filter);
    store_page_free(&c->backlog);
    free(c->rx);
    free(c);
}

void lv_client_timer(live *l, lv_client *c)
{
    if (c->state != LV_CS_AUTH) return;
    atomic_fetch_add(&l->n_refused, 1);
    queue_error(c, "auth_timeout", "no auth message within 5 s", true);
}

/* ---- client messages ---- */

static void send_hello(live *l, lv_client *c)
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
    queue_json(c, o, LV_OUT_PLAIN);
    lv_ticks_hello(l, c);
}

/* The failed-authentication slow-down shared with HTTP: true when c's address is refused now
 * (an error is queued), else the token is checked and its outcome counted. */
static bool auth_refused(live *l, lv_client *c, const char *token, auth_role *role)
{
    ratelimit_key key;
    bool limited = l->auth_fails && lv_conns_peer(l, c->wsi, &key);
    int64_t retry_ms;
    if (limited && ratelimit_blocked(l->auth_fails, &key, util_mono_ms(), &retry_ms)) {
        /* whatever the token: checking it would let the address go on guessing */
        char msg[160];
        snprintf(msg, sizeof msg,
                 "too many failed authentications from this address; retry in %lld s",
                 ratelimit_retry_s(retry_ms));
        atomic_fetch_add(&l->n_refused, 1);
        queue_error(c, "too_many_requests", msg, true);
        return true;
    }
    *role = auth_check_token(l->au, token);
    if (limited && *role != AUTH_NONE) ratelimit_succeeded(l->auth_fails, &key);
    if (limited && *role == AUTH_NONE) ratelimit_failed(l->auth_fails, &key, util_mono_ms());
    return false;
}

static void on_auth(live *l, lv_client *c, live_msg *m)
{
    auth_role role = AUTH_NONE;
    if (auth_refused(l, c, m->token, &role)) return;
    if (role == AUTH_NONE) {
        atomic_fetch_add(&l->n_refused, 1);
        log_ratelimited(LOG_INFO, "live", "bad-token",
                        "refused a connection: the token is not valid");
        queue_error(c, "unauthorized", "the token is not valid", true);
        return;
    }
    if (!auth_allows(role, AUTH_READ)) { /* the stream is reading: an ingest token reads nothing */
        atomic_fetch_add(&l->n_refused, 1);
        log_info("live", "refused a connection: an ingest token may not read the stream");
        queue_error(c, "forbidden", "an ingest token may not read the stream", true);
        return;
    }
    lws_set_timer_usecs(c->wsi, LWS_SET_TIMER_USEC_CANCEL);
    c->role = role;
    c->state = LV_CS_OPEN;
    if (m->has_filter) live_filter_move(&c->filter, &m->filter);
    /* Take in what was committed before this auth arrived (the commit hook may not have woken
     * the loop yet), so hello.last_seq covers every POST answered before it. */
    lv_hub_pull(l);
    send_hello(l, c);
    c->cursor = l->fetched_seq;
    if (m->has_since) atomic_fetch_add(&l->n_resumes, 1);
    if (m->has_since && m->since_seq < l->fetched_seq) {
        lv_hub_resume(l, c, m->since_seq);
        c->in_ring = false;
    } else {
        c->ring_idx = l->head;
        c->in_ring = true;
        c->caught_up = true;
    }
    lws_callback_on_writable(c->wsi);
}

static void on_message(live *l, lv_client *c, const char *text, size_t len)
{
    live_msg m;
    er_err err = {{0}};
    er_rc rc = live_msg_parse(text, len, &m, &err);
    if (c->state == LV_CS_AUTH) {
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
        queue_json(c, o, LV_OUT_PLAIN);
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
        queue_json(c, o, LV_OUT_PLAIN);
        break;
    }
    }
    live_msg_free(&m);
}

void lv_client_receive(live *l, lv_client *c, struct lws *wsi, const void *in, size_t len)
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
        /* kept NUL-terminated: cJSON's length-bounded parse may look one byte past the end */
        char *grown = realloc(c->rx, c->rx_len + len + 1);
        if (!grown) {
            c->rx_skip = true;
            c->rx_skip_why = "out of memory";
        } else {
            c->rx = grown;
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
            c->rx[c->rx_len] = '\0';
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return;
    if (c->rx_skip)
        queue_error(c, c->state == LV_CS_AUTH ? "unauthorized" : "bad_request", c->rx_skip_why,
                    c->state == LV_CS_AUTH);
    else
        on_message(l, c, c->rx, c->rx_len);
    c->rx_len = 0;
    c->rx_skip = false;
    free(c->rx); /* messages are rare and small: do not keep the biggest one around */
    c->rx = NULL;
}

/* ---- writing ---- */

/* One write per writable callback, as lws wants: control messages first, then a missed
 * notice, then the next inference. Returns -1 to close. */
int lv_client_writable(live *l, lv_client *c, struct lws *wsi)
{
    if (c->ctrl_head) {
        lv_out_msg *m = c->ctrl_head;
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
    if (c->state != LV_CS_OPEN) return 0;
    if (c->missed) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\":\"missed\",\"count\":%lld,\"reason\":\"%s\"}",
                 (long long)c->missed, c->missed_reason);
        c->missed = 0;
        lv_queue_text(c, text, LV_OUT_PLAIN);
        return 0;
    }
    size_t len = 0;
    unsigned char *owned = NULL;
    const unsigned char *msg = lv_hub_next(l, c, &len, &owned);
    if (!msg) return 0;
    int w = lws_write(wsi, (unsigned char *)msg + LWS_PRE, len, LWS_WRITE_TEXT);
    free(owned);
    if (w < 0) return -1;
    atomic_fetch_add(&l->n_sent, 1);
    lws_callback_on_writable(wsi);
    return 0;
}
