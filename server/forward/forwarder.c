/* forwarder.c - see forwarder.h: the forwarder thread (connect, drain the outbox, acks,
 * commands, stop). Thread ownership: everything below "thread-only" in struct forwarder
 * (forward_internal.h) is touched by this thread alone; paho's callbacks and the store's commit
 * callback (forwarder_events.c) queue events / add model metrics under f->mu and signal f->cv,
 * and paho's PUBACK callback refills the window from the messages this thread prepared
 * (forwarder_window.c: the window, the prepared ring and the pacing are under f->mu, and this
 * thread never calls paho while holding it); counters are relaxed atomics. */
#include "forward/forward_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "forward/commands.h"
#include "forward/model_metrics.h"
#include "forward/mqtt.h"
#include "forward/pace.h"
#include "forward/payload.h"
#include "forward/topics.h"

#define STABLE_MS 10000 /* a connection that lived this long resets the backoff */
/* A connection lost this soon after clearing a retained command, before the clear came back:
 * the broker refused the clear (IoT Core closes the connection on a denied publish). */
#define CLEAR_REFUSED_MS 5000
#define CONNECT_SPACING_MS 1000 /* IoT Core: one CONNECT per second per client id */
#define SEND_FAIL_GRACE_MS 2000 /* wait for connectionLost before resending a failed publish */
/* Stopping: how long to wait for the PUBACKs of the publishes in flight, so their rows leave
 * the outbox now rather than going again after the restart. The Java nucleus kills 5 s after
 * its SIGTERM; IoT Core acks in well under a second. */
#define STOP_ACKS_MS 1000
#define STOP_DISCONNECT_MS 1000 /* then the DISCONNECT */

static const char *const state_names[] = {"connecting", "connected", "backoff"};

/* ---- thread-side helpers ---------------------------------------------------------------- */

static void set_state(forwarder *f, fwd_state s, const char *err)
{
    pthread_mutex_lock(&f->mu);
    f->state = s;
    if (err) snprintf(f->last_error, sizeof f->last_error, "%s", err);
    f->connected_since = s == FWD_ST_CONNECTED ? util_now_ms() : 0;
    pthread_mutex_unlock(&f->mu);
}

static uint32_t rnd32(void)
{
    uint32_t r = 0;
    if (util_random(&r, sizeof r)) r = (uint32_t)util_mono_ms() * 2654435761u;
    return r;
}

/* Records the acknowledged rows. In the drain loop the ack is queued for the store's next group
 * commit without waiting (wait false), so the window is refilled while the writer commits; a
 * crash before that commit only means those rows are sent again. Before a rewind and at stop it
 * waits, so the rows are gone before the queue is read again. */
static void flush_acks(forwarder *f, bool wait)
{
    if (f->n_acks == 0) return;
    er_rc rc = wait ? store_outbox_ack(f->st, f->acks, f->n_acks)
                    : store_outbox_ack_async(f->st, f->acks, f->n_acks);
    if (rc)
        log_warn("forward",
                 "recording %zu acknowledged messages failed: %s (they will be sent "
                 "again)",
                 f->n_acks, er_rc_name(rc));
    else
        atomic_fetch_add_explicit(&f->acked, (int64_t)f->n_acks, memory_order_relaxed);
    f->n_acks = 0;
}

static void add_ack(forwarder *f, int64_t seq, int64_t now)
{
    if (f->n_acks == sizeof f->acks / sizeof f->acks[0]) flush_acks(f, false);
    if (f->n_acks == 0) f->ack_due_ms = now + FWD_ACK_DELAY_MS;
    f->acks[f->n_acks++] = seq;
}

/* The rows of an acknowledged publish go to the acks; frees its batch. */
static void ack_rows(forwarder *f, fwd_inflight *fl, int64_t now)
{
    if (fl->batch)
        for (int k = 0; k < fl->n; k++)
            add_ack(f, fl->batch[k], now);
    else
        add_ack(f, fl->seq, now);
    free(fl->batch);
    fl->batch = NULL;
}

/* Records the publishes the callback saw acknowledged (f->taken, n of them). */
static void record_taken(forwarder *f, int n, int64_t now)
{
    for (int i = 0; i < n; i++)
        ack_rows(f, &f->taken[i], now);
}

static int64_t in_flight(forwarder *f)
{
    return atomic_load(&f->in_flight);
}

/* The drain loop's flush: the acks wait (bounded) for more to join them while the window is
 * busy, so the store makes one durable commit per FWD_ACK_BATCH rows or FWD_ACK_DELAY_MS
 * rather than one per turn; with nothing in flight they go at once (a lone message, the end
 * of a drain). Nothing waits on these rows: they are already PUBACKed, and a crash before
 * the commit only sends them again (at-least-once). */
static void flush_acks_due(forwarder *f, int64_t now)
{
    if (in_flight(f) == 0 || f->n_acks >= FWD_ACK_BATCH || now >= f->ack_due_ms)
        flush_acks(f, false);
}

/* Empties the window and the prepared ring (caller holds f->mu; the callback is off). */
static void clear_window_locked(forwarder *f)
{
    for (int i = 0; i < f->n_fl; i++)
        free(f->fl[i].batch);
    f->n_fl = 0;
    atomic_store(&f->in_flight, 0);
    while (f->prep_n > 0) {
        fwd_inflight rows;
        forward__pop_head_locked(f, &rows);
        free(rows.batch);
    }
    f->prep_head = 0;
    f->prep_bytes = 0;
}

/* Forget what was sent and prepared on this connection: the next one starts at the oldest
 * unacked row. Acks the callback already took are recorded (and waited for) first. */
static void rewind_queue(forwarder *f)
{
    pthread_mutex_lock(&f->mu);
    f->cb_window = 0;
    int n = forward__take_done_locked(f);
    clear_window_locked(f);
    pthread_mutex_unlock(&f->mu);
    record_taken(f, n, util_mono_ms());
    flush_acks(f, true);
    store_page_free(&f->page);
    memset(&f->page, 0, sizeof f->page);
    f->page_i = 0;
    f->page_empty = false;
    f->prepared_seq = 0;
    f->send_failed_ms = 0;
}

static void schedule_connect(forwarder *f, int64_t now)
{
    int64_t delay = pace_backoff_next(&f->bo, rnd32());
    int64_t at = now + delay;
    if (at < f->last_connect_ms + CONNECT_SPACING_MS) at = f->last_connect_ms + CONNECT_SPACING_MS;
    f->next_connect_ms = at;
}

static void start_connect(forwarder *f, int64_t now)
{
    const config *c = f->cfg;
    er_err err = {{0}};
    if (f->last_connect_ms) atomic_fetch_add_explicit(&f->reconnects, 1, memory_order_relaxed);
    f->last_connect_ms = now;
    f->gen++;
    mqtt_opts o = {.host = c->mqtt_endpoint,
                   .port = c->mqtt_port,
                   .ca = c->mqtt_ca,
                   .cert = c->mqtt_cert,
                   .key = c->mqtt_key,
                   .client_id = f->client_id,
                   .keepalive_s = c->mqtt_keepalive_s,
                   .max_inflight = c->mqtt_inflight + 4, /* room for commands and model metrics */
                   .gen = f->gen};
    mqtt_callbacks cb;
    forward__mqtt_callbacks(f, &cb);
    er_rc rc = f->mq ? mqtt_reconnect(f->mq, f->gen, &err) : mqtt_connect(&o, &cb, &f->mq, &err);
    if (rc) {
        mqtt_destroy(f->mq, 0); /* start over with a new client next time */
        f->mq = NULL;
        set_state(f, FWD_ST_BACKOFF, err.msg);
        log_warn("forward", "%s", err.msg);
        schedule_connect(f, now);
        return;
    }
    f->live = true;
    set_state(f, FWD_ST_CONNECTING, NULL);
}

/* Publishes a non-row message (start, model metrics, command reply); failures are logged only. */
static void publish_aux(forwarder *f, const char *topic, const char *payload, size_t len,
                        bool retained)
{
    int token;
    er_err err = {{0}};
    if (!f->live) return;
    if (mqtt_publish(f->mq, topic, payload, len, f->cfg->iotcore_qos, retained, &token, &err))
        log_warn("forward", "%s: %s", topic, err.msg);
}

/* get_status: the status object's command view (forwarder_report.c writes both views). */
static void status_fill(void *arg, void *obj)
{
    forwarder_status s;
    forwarder_get_status(arg, &s);
    forward__status_command(&s, obj);
}

static void reset_model_metrics_cb(void *arg)
{
    forwarder *f = arg;
    pthread_mutex_lock(&f->mu);
    model_metrics_reset(&f->model_metrics);
    pthread_mutex_unlock(&f->mu);
}

static void restart_cb(void *arg)
{
    forwarder *f = arg;
    atomic_store(&f->restart, true);
    log_warn("forward", "restart command: stopping so the supervisor starts ei-relay again");
    kill(getpid(), SIGTERM); /* process-directed: main's sigwait takes it */
}

/* Persists f->handled; a failure only costs running a replay once more after a restart. */
static void save_handled(forwarder *f)
{
    if (commands_handled_save(f->st, &f->handled))
        log_warn("forward", "the list of handled commands could not be saved");
}

static void handle_message(forwarder *f, fwd_event *e)
{
    if (strcmp(e->topic, f->tp.t[TOPICS_CMD_IN]) != 0) return;
    if (e->len == 0) {
        /* our own clearing of a retained command echoed back (or anyone's): the broker holds
         * no retained command now, so none of those we ran can come back */
        f->clear_sent_ms = 0;
        if (f->handled.n > 0) {
            f->handled.n = 0;
            save_handled(f);
        }
        return;
    }
    char id[COMMANDS_ID_LEN + 1];
    commands_id(e->payload, e->len, id);
    if (e->retained && commands_handled_has(&f->handled, id)) {
        /* delivered again at a new subscription: the broker did not let us clear it */
        log_info("forward",
                 "the retained command on %s (id %s) already ran; not running it again "
                 "(clearing it was refused: see iot:RetainPublish in docs/greengrass.md)",
                 e->topic, id);
        atomic_fetch_add_explicit(&f->commands_replayed, 1, memory_order_relaxed);
        return;
    }
    util_buf reply = {0};
    commands_ctx c = {.st = f->st,
                      .pol = f->pol,
                      .arg = f,
                      .status = status_fill,
                      .reset_model_metrics = reset_model_metrics_cb,
                      .restart = NULL};
    bool restart = false;
    commands_cmd cmd;
    if (commands_parse(e->payload, e->len, &cmd, NULL) == ER_OK && cmd.verb == COMMANDS_RESTART)
        restart = true;
    if (commands_handle(&c, e->payload, e->len, &reply) == ER_OK)
        publish_aux(f, f->tp.t[TOPICS_CMD_OUT], reply.data, reply.len, false);
    atomic_fetch_add_explicit(&f->commands, 1, memory_order_relaxed);
    util_buf_free(&reply);
    /* recorded before the clear and before a restart: a retained restart whose clear is
     * refused must not restart the relay on every connection */
    commands_handled_add(&f->handled, id);
    save_handled(f);
    /* The components expected senders to retain commands. A broker sets the retain flag only
     * on delivery to a new subscription, not on live delivery of a retained PUBLISH, so the
     * command may be retained either way: always clear it (an empty retained message; a no-op
     * when nothing is retained) so it is not handled again on the next connection. */
    if (!f->clear_refused) {
        publish_aux(f, f->tp.t[TOPICS_CMD_IN], "", 0, true);
        if (f->live) f->clear_sent_ms = util_mono_ms();
    }
    if (restart) restart_cb(f); /* after the reply was queued */
}

/* The newest row of a message in flight, or floor if that is newer. */
static int64_t max_seq(const fwd_inflight *fl, int64_t floor)
{
    int64_t m = fl->seq > floor ? fl->seq : floor;
    for (int k = 0; fl->batch && k < fl->n; k++)
        if (fl->batch[k] > m) m = fl->batch[k];
    return m;
}

/* The connection was lost right after a clear that never came back: the broker refused it.
 * Then ei-relay stops clearing for the rest of the run (each clear would cost a connection)
 * and the loss is not held against the rows in flight. */
static bool clear_refused(forwarder *f, int64_t now)
{
    bool refused = f->clear_sent_ms != 0 && now - f->clear_sent_ms < CLEAR_REFUSED_MS;
    f->clear_sent_ms = 0;
    if (!refused || f->clear_refused) return refused;
    f->clear_refused = true;
    log_warn("forward",
             "the broker closed the connection when ei-relay cleared the retained command on "
             "%s (an IoT policy without iot:RetainPublish does that): retained commands are no "
             "longer cleared until a restart; one that comes back is recognised and not run "
             "again",
             f->tp.t[TOPICS_CMD_IN]);
    return true;
}

static void handle_down(forwarder *f, fwd_event *e, int64_t now)
{
    bool quick = e->was_connected && now - f->connected_at_ms < STABLE_MS;
    bool by_clear = e->was_connected && clear_refused(f, now);
    if (e->was_connected && !quick) pace_backoff_reset(&f->bo);
    pthread_mutex_lock(&f->mu);
    f->cb_window = 0; /* from here every PUBACK is an event */
    int n_fl = f->n_fl;
    int64_t alone = n_fl == 1 ? f->fl[0].seq : 0;
    int64_t until = f->probe_until;
    for (int i = 0; i < n_fl; i++)
        until = max_seq(&f->fl[i], until);
    pthread_mutex_unlock(&f->mu);
    if (quick && !by_clear && n_fl > 0) {
        if (f->probe && n_fl == 1) {
            /* alone on the wire and the broker hung up: count it against this row */
            bool dead = false;
            if (store_outbox_fail(f->st, alone, false, e->reason, &dead) == ER_OK && dead)
                log_warn("forward", "message seq %lld dead-lettered: %s", (long long)alone,
                         e->reason);
        }
        f->probe = true;
        f->probe_until = until;
    }
    f->live = false; /* mq is kept: its queue may still hold publishes (see mqtt.h) */
    f->up = false;
    rewind_queue(f);
    /* log a failure once per change of reason, not on every retry */
    pthread_mutex_lock(&f->mu);
    bool same = strcmp(f->last_error, e->reason) == 0 && (f->state != FWD_ST_CONNECTED || quick);
    pthread_mutex_unlock(&f->mu);
    log_msg(same ? LOG_DEBUG : LOG_WARN, "forward", "%s:%d: %s", f->cfg->mqtt_endpoint,
            f->cfg->mqtt_port, e->reason);
    f->flapping = same && e->was_connected; /* connect, lose, again: reconnects logged quietly */
    set_state(f, FWD_ST_BACKOFF, e->reason);
    schedule_connect(f, now);
}

static void handle_connected(forwarder *f, int64_t now)
{
    int token;
    f->connected_at_ms = now;
    f->up = true;
    set_state(f, FWD_ST_CONNECTED, NULL);
    log_msg(f->flapping ? LOG_DEBUG : LOG_INFO, "forward", "connected to %s:%d as %s",
            f->cfg->mqtt_endpoint, f->cfg->mqtt_port, f->client_id);
    if (mqtt_subscribe(f->mq, f->tp.t[TOPICS_CMD_IN], 1, &token))
        log_warn("forward", "cannot subscribe to %s", f->tp.t[TOPICS_CMD_IN]);
    if (!f->start_sent) {
        char id[UTIL_UUID_LEN + 1], msg[160];
        util_uuid4(id);
        int n = snprintf(msg, sizeof msg,
                         "{\"result\":{\"status\":\"started\",\"ts\":%lld,\"id\":\"%s\"}}",
                         (long long)util_now_ms(), id);
        publish_aux(f, f->tp.t[TOPICS_CMD_OUT], msg, (size_t)n, false);
        f->start_sent = true;
    }
}

static void handle_done(forwarder *f, fwd_event *e, int64_t now)
{
    int found = 0; /* 1 acknowledged, -1 failed, 0 not a row (start, model metrics, reply,
                    * subscribe) or from before a rewind */
    fwd_inflight got = {0};
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n_fl; i++) {
        if (f->fl[i].token != e->token) continue;
        found = e->ok ? 1 : -1;
        if (e->ok) {
            got = f->fl[i];
            f->fl[i] = f->fl[--f->n_fl];
            atomic_store(&f->in_flight, f->n_fl);
        }
        break;
    }
    pthread_mutex_unlock(&f->mu);
    if (found < 0) {
        /* paho gives up on in-flight publishes when the connection drops, usually just
         * before connectionLost: keep the row in flight so handle_down can count it; if no
         * loss follows, the loop sends it again after a grace time */
        if (!f->send_failed_ms) f->send_failed_ms = now;
    } else if (found > 0) {
        if (max_seq(&got, INT64_MIN) >= f->probe_until) f->probe = false;
        ack_rows(f, &got, now);
    }
}

static void dead_letter(forwarder *f, int64_t seq, const char *reason)
{
    bool dead = false;
    if (store_outbox_fail(f->st, seq, true, reason, &dead))
        log_warn("forward", "cannot dead-letter seq %lld", (long long)seq);
    else
        log_warn("forward", "message seq %lld dead-lettered: %s", (long long)seq, reason);
}

/* batch_on_backlog: more than N rows waiting (and not probing for a poison row). */
static bool batching(forwarder *f, int64_t now)
{
    int64_t n = f->cfg->batch_on_backlog;
    if (n <= 0 || f->probe) return false;
    if (now - f->backlog_checked_ms >= 1000) {
        store_outbox_stats os;
        if (store_outbox_stats_get(f->st, &os) == ER_OK) f->backlog = os.pending;
        f->backlog_checked_ms = now;
    }
    return f->backlog > n;
}

/* Turns the one message in msg (of the page's current row) into a JSON array of the messages of
 * the next rows of the page, as many as fit in the payload limit; their seqs go to
 * f->built_seqs. Rows that do not fit stay for the next. Returns the rows in msg. */
static int build_batch(forwarder *f, const payload_opts *po, util_buf *msg)
{
    util_buf b = {0}, one = {0};
    int n = 1;
    if (msg->len + 2 > PAYLOAD_MAX_BYTES) goto done; /* alone it just fits: send it so */
    if (util_buf_append(&b, "[", 1) || util_buf_append(&b, msg->data, msg->len)) goto done;
    for (size_t i = f->page_i + 1; i < f->page.n && n < FWD_FETCH_ROWS; i++) {
        payload_info pi;
        if (payload_inference(f->page.items[i], po, &one, &pi)) break; /* it goes alone */
        if (b.len + 1 + one.len + 1 > PAYLOAD_MAX_BYTES) break;
        if (util_buf_append(&b, ",", 1) || util_buf_append(&b, one.data, one.len)) break;
        if (pi.shrunk) atomic_fetch_add_explicit(&f->shrunk, 1, memory_order_relaxed);
        if (pi.omitted) atomic_fetch_add_explicit(&f->omitted, 1, memory_order_relaxed);
        f->built_seqs[n++] = f->page.items[i]->seq;
    }
    if (n > 1 && util_buf_append(&b, "]", 1) == ER_OK) {
        util_buf_free(msg);
        *msg = b;
        b = (util_buf){0};
    } else {
        n = 1;
    }
done:
    util_buf_free(&b);
    util_buf_free(&one);
    return n;
}

/* The window: mqtt_inflight, or 1 while probing for a row that kills the connection. */
static int window_of(const forwarder *f)
{
    int window = f->probe ? 1 : f->cfg->mqtt_inflight;
    return window > FWD_INFLIGHT_CAP ? FWD_INFLIGHT_CAP : window;
}

/* Renders the next rows of the outbox into the free slots of the prepared ring, up to
 * FWD_PREP_WINDOWS windows (at most FWD_PREP_CAP messages) and FWD_PREP_BYTES, outside f->mu (free
 * slots are this thread's: the callback only takes from the head, so the tail stays where it was
 * read), then makes them ready in one step. A row over the payload limit even without image is
 * dead-lettered here. */
static void prepare(forwarder *f, int64_t now)
{
    const config *c = f->cfg;
    payload_opts po = {.include_image = c->publish_inference_base64_image,
                       .s3_bucket = c->s3_bucket};
    int cap = window_of(f) * FWD_PREP_WINDOWS;
    if (cap > FWD_PREP_CAP) cap = FWD_PREP_CAP;
    if (now < f->prep_until_ms) return;
    pthread_mutex_lock(&f->mu);
    int n = f->prep_n, tail = (f->prep_head + f->prep_n) % FWD_PREP_CAP;
    size_t bytes = f->prep_bytes;
    pthread_mutex_unlock(&f->mu);
    int added = 0;
    while (n < cap && (n == 0 || bytes < FWD_PREP_BYTES)) {
        if (f->page_i >= f->page.n) {
            if (f->page_empty) break;
            store_page_free(&f->page);
            memset(&f->page, 0, sizeof f->page);
            f->page_i = 0;
            er_rc rc = (po.include_image ? store_outbox_fetch : store_outbox_fetch_meta)(
                f->st, f->prepared_seq, FWD_FETCH_ROWS, &f->page);
            if (rc) {
                log_warn("forward", "reading the outbox failed: %s", er_rc_name(rc));
                f->prep_until_ms = now + 1000;
                break;
            }
            if (f->page.n == 0) {
                f->page_empty = true;
                break;
            }
        }
        inference *inf = f->page.items[f->page_i];
        fwd_prepared *p = &f->prep[(tail + added) % FWD_PREP_CAP];
        payload_info pi;
        er_rc rc = payload_inference(inf, &po, &p->msg, &pi);
        if (rc == ER_TOOBIG) {
            dead_letter(f, inf->seq, "the message is over 131072 bytes even without image");
            f->prepared_seq = inf->seq;
            f->page_i++;
            continue;
        }
        if (rc) {
            f->prep_until_ms = now + 1000; /* out of memory: try again in a while */
            break;
        }
        if (pi.shrunk) atomic_fetch_add_explicit(&f->shrunk, 1, memory_order_relaxed);
        if (pi.omitted) atomic_fetch_add_explicit(&f->omitted, 1, memory_order_relaxed);
        f->built_seqs[0] = inf->seq;
        int rows = batching(f, now) ? build_batch(f, &po, &p->msg) : 1;
        p->seq = inf->seq;
        p->n = rows;
        p->batch = NULL;
        /* out of memory: only the first row is acked; the others stay pending and go again
         * after a reconnect */
        if (rows > 1 && (p->batch = malloc(sizeof(int64_t) * (size_t)rows)))
            memcpy(p->batch, f->built_seqs, sizeof(int64_t) * (size_t)rows);
        f->prepared_seq = f->built_seqs[rows - 1];
        f->page_i += (size_t)rows;
        added++;
        n++;
        bytes += p->msg.len;
    }
    if (added == 0) return;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < added; i++)
        f->prep_bytes += f->prep[(tail + i) % FWD_PREP_CAP].msg.len;
    f->prep_n += added;
    pthread_mutex_unlock(&f->mu);
}

/* Publishes prepared messages from this thread while the window and the pacing allow: the
 * first of a drain, and whatever the callback could not (pacing, an error, the probe). paho is
 * called outside f->mu; thread_sending keeps the callback from publishing meanwhile, so the
 * order holds and the head stays put. */
static void send_prepared(forwarder *f, int64_t now)
{
    int window = window_of(f);
    while (f->live) {
        pthread_mutex_lock(&f->mu);
        bool go = f->n_fl < window && f->prep_n > 0 && now >= f->pace_until_ms &&
                  forward__pace_head_locked(f, now) == 0;
        const fwd_prepared *p = &f->prep[f->prep_head];
        f->thread_sending = go;
        pthread_mutex_unlock(&f->mu);
        if (!go) return;
        int token;
        er_err err = {{0}};
        er_rc rc = mqtt_publish(f->mq, forward__topic(f, p), p->msg.data, p->msg.len,
                                f->cfg->iotcore_qos, false, &token, &err);
        fwd_inflight bad = {0};
        pthread_mutex_lock(&f->mu);
        f->thread_sending = false;
        if (rc == ER_OK)
            forward__sent_head_locked(f, token);
        else if (rc == ER_INVALID)
            forward__pop_head_locked(f, &bad);
        pthread_mutex_unlock(&f->mu);
        if (rc == ER_INVALID) {
            if (bad.batch)
                for (int k = 0; k < bad.n; k++)
                    dead_letter(f, bad.batch[k], err.msg);
            else
                dead_letter(f, bad.seq, err.msg);
            free(bad.batch);
        } else if (rc) {
            return; /* disconnected or buffer full: the callbacks will wake us */
        }
    }
}

/* One turn of the drain: publish what the callback did not (the start of a drain, pacing, an
 * error, the probe), top up the prepared ring, publish again (the window may have room that no
 * PUBACK is coming to fill), and let the callback refill from here on while the connection is
 * up and healthy. */
static void drain(forwarder *f, int64_t now)
{
    send_prepared(f, now);
    prepare(f, now);
    send_prepared(f, now);
    pthread_mutex_lock(&f->mu);
    bool on = f->live && f->up && !f->probe && !f->send_failed_ms && !f->stop;
    f->cb_window = on ? window_of(f) : 0;
    f->cb_gen = f->gen;
    f->cb_mq = f->mq;
    f->prep_low = f->prep_n / 2;
    pthread_mutex_unlock(&f->mu);
}

static void send_model_metrics(forwarder *f)
{
    util_buf b = {0};
    char id[UTIL_UUID_LEN + 1];
    util_uuid4(id);
    pthread_mutex_lock(&f->mu);
    er_rc rc = model_metrics_report(&f->model_metrics, util_now_ms(), id, &b);
    pthread_mutex_unlock(&f->mu);
    if (rc == ER_OK) publish_aux(f, f->tp.t[TOPICS_MODEL_METRICS], b.data, b.len, false);
    util_buf_free(&b);
}

/* How many PUBACKs wake the thread: a quarter of the window (one turn then refills several
 * publishes and records their acks together), never more than are in flight. */
static int wake_dones(forwarder *f)
{
    int n = window_of(f) / 4;
    int64_t fl = in_flight(f);
    if (!f->up || n < 1) return 1;
    return n < fl ? n : (int)fl;
}

static void *run(void *arg)
{
    forwarder *f = arg;
    util_thread_name("eir-forward", NULL);
    int64_t now = util_mono_ms();
    f->next_connect_ms = now;
    f->next_model_metrics_ms = now + f->cfg->metrics_sleeptime_ms;
    pthread_mutex_lock(&f->mu);
    pace_bucket_init(&f->rate, f->cfg->publish_rate_max, now);
    pace_bucket_init(&f->bytes, (double)f->cfg->publish_bytes_max, now);
    pthread_mutex_unlock(&f->mu);
    fwd_event *spent = NULL; /* the last turn's events, given back at the next */
    for (;;) {
        bool stop, woken;
        int n_taken;
        fwd_event *evs = forward__take_events(f, spent, &stop, &woken, &n_taken);
        spent = evs;
        now = util_mono_ms();
        if (stop && !f->stop_by_ms) {
            f->stop_by_ms = now + STOP_ACKS_MS;
            if (f->up && in_flight(f) > 0)
                log_info("forward", "stopping: waiting for %lld publishes in flight",
                         (long long)in_flight(f));
        }
        record_taken(f, n_taken, now); /* acknowledged before any event of this turn */
        if (woken) f->page_empty = false;
        for (fwd_event *e = evs; e; e = e->next) {
            if (e->gen != f->gen || !f->live) continue; /* from an earlier connection */
            /* stopping: only what settles the publishes in flight; a command waits */
            if (stop && e->type != FWD_EV_DONE && e->type != FWD_EV_DOWN) continue;
            switch (e->type) {
            case FWD_EV_CONNECTED:
                handle_connected(f, now);
                break;
            case FWD_EV_DOWN:
                handle_down(f, e, now);
                break;
            case FWD_EV_DONE:
                handle_done(f, e, now);
                break;
            case FWD_EV_MESSAGE:
                handle_message(f, e);
                break;
            }
        }
        if (stop) {
            /* nothing new is sent; forwarder_stop records the acks that came */
            if (!f->up || in_flight(f) == 0 || now >= f->stop_by_ms) break;
            forward__wait_until(f, f->stop_by_ms, true, 1);
            continue;
        }
        if (!f->live && now >= f->next_connect_ms) start_connect(f, now);
        if (f->up && f->send_failed_ms && now - f->send_failed_ms >= SEND_FAIL_GRACE_MS)
            rewind_queue(f); /* a publish failed but the connection stayed: send again */
        if (f->up) drain(f, now);
        flush_acks_due(f, now); /* after refilling the window: the broker works meanwhile */
        if (now >= f->next_model_metrics_ms) {
            if (f->up) send_model_metrics(f); /* while down the window keeps accumulating */
            f->next_model_metrics_ms = now + f->cfg->metrics_sleeptime_ms;
        }
        /* sleep until the next deadline or a hand-off */
        int64_t until = f->next_model_metrics_ms;
        if (!f->live && f->next_connect_ms < until) until = f->next_connect_ms;
        pthread_mutex_lock(&f->mu);
        int64_t pace_until = f->pace_until_ms;
        pthread_mutex_unlock(&f->mu);
        if (f->up && pace_until > now && pace_until < until) until = pace_until;
        if (f->up && f->prep_until_ms > now && f->prep_until_ms < until) until = f->prep_until_ms;
        /* the callback's acks are taken at least this often */
        if (in_flight(f) > 0 && now + FWD_ACK_DELAY_MS < until) until = now + FWD_ACK_DELAY_MS;
        if (f->up && f->send_failed_ms && f->send_failed_ms + SEND_FAIL_GRACE_MS < until)
            until = f->send_failed_ms + SEND_FAIL_GRACE_MS;
        if (f->n_acks > 0 && f->ack_due_ms < until) until = f->ack_due_ms;
        forward__wait_until(f, until, false, wake_dones(f));
    }
    forward__free_events(spent);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------- */

er_rc forwarder_create(const config *cfg, store *st, policy *pol, const char *device,
                       forwarder **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    forwarder *f = calloc(1, sizeof *f);
    if (!f) goto fail;
    f->cfg = cfg;
    f->st = st;
    f->pol = pol;
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    pace_backoff_init(&f->bo, cfg->reconnect_min_ms, cfg->reconnect_max_ms);
    rc = ER_CONFIG;
    if (!cfg->mqtt_endpoint) {
        er_fail(err, rc, "mqtt_endpoint is not set");
        goto fail;
    }
    er_err terr = {{0}};
    if (topics_build(device, &f->tp, &terr)) {
        rc = er_fail(err, ER_CONFIG, "device_name: %s", terr.msg); /* a setting's fault */
        goto fail;
    }
    int n = cfg->mqtt_client_id
                ? snprintf(f->client_id, sizeof f->client_id, "%s", cfg->mqtt_client_id)
                : snprintf(f->client_id, sizeof f->client_id, "%s-ei-relay", device);
    if (n < 0 || (size_t)n >= sizeof f->client_id) {
        rc = er_fail(err, ER_CONFIG, "mqtt_client_id is too long");
        goto fail;
    }
    commands_load_persisted(st, pol); /* settings changed by command win over the config */
    commands_handled_load(st, &f->handled);
    if (pthread_create(&f->thread, NULL, run, f)) {
        rc = er_fail(err, ER_INTERNAL, "cannot start the forwarder thread");
        goto fail;
    }
    f->started = true;
    /* last: once subscribed, f must outlive the store (see forwarder_destroy) */
    if ((rc = store_subscribe(st, forward__on_commit, f))) {
        er_fail(err, rc, "cannot subscribe the forwarder to the store");
        goto fail;
    }
    log_info("forward", "forwarding to %s:%d as %s, device %s", cfg->mqtt_endpoint, cfg->mqtt_port,
             f->client_id, device);
    *out = f;
    return ER_OK;
fail:
    forwarder_destroy(f);
    return rc;
}

void forwarder_stop(forwarder *f)
{
    if (!f) return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        f->cb_window = 0; /* the callback publishes no more: mq goes below */
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        f->started = false;
        pthread_mutex_lock(&f->mu);
        int n = forward__take_done_locked(f); /* none: the thread took them after the stop */
        pthread_mutex_unlock(&f->mu);
        record_taken(f, n, util_mono_ms());
        flush_acks(f, true);
        if (f->up && in_flight(f) > 0)
            log_warn("forward",
                     "stopped with %lld publishes unacknowledged: they stay in the outbox and "
                     "go again at the next start",
                     (long long)in_flight(f));
    }
    mqtt_destroy(f->mq, STOP_DISCONNECT_MS); /* no callback after this */
    f->mq = NULL;
    f->live = false;
    pthread_mutex_lock(&f->mu);
    forward__free_events(f->ev_head); /* queued by the last callbacks */
    f->ev_head = f->ev_tail = NULL;
    pthread_mutex_unlock(&f->mu);
}

void forwarder_destroy(forwarder *f)
{
    if (!f) return;
    forwarder_stop(f);
    /* no callback runs any more (mqtt_destroy); those in flight stay in the outbox */
    pthread_mutex_lock(&f->mu);
    clear_window_locked(f);
    for (int i = 0; i < f->n_done; i++)
        free(f->done[i].batch);
    f->n_done = 0;
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < FWD_PREP_CAP; i++)
        util_buf_free(&f->prep[i].msg);
    store_page_free(&f->page);
    forward__free_events(f->ev_free);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void forwarder_get_status(forwarder *f, forwarder_status *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&f->mu);
    out->state = state_names[f->state];
    snprintf(out->last_error, sizeof out->last_error, "%s", f->last_error);
    out->connected_since = f->connected_since;
    pthread_mutex_unlock(&f->mu);
    snprintf(out->endpoint, sizeof out->endpoint, "%s:%d", f->cfg->mqtt_endpoint,
             f->cfg->mqtt_port);
    snprintf(out->client_id, sizeof out->client_id, "%s", f->client_id);
    out->in_flight = atomic_load(&f->in_flight);
    out->sent = atomic_load(&f->sent);
    out->acked = atomic_load(&f->acked);
    out->reconnects = atomic_load(&f->reconnects);
    out->shrunk = atomic_load(&f->shrunk);
    out->omitted = atomic_load(&f->omitted);
    out->commands = atomic_load(&f->commands);
    out->commands_replayed = atomic_load(&f->commands_replayed);
    out->restart_requested = atomic_load(&f->restart);
    out->qos = f->cfg->iotcore_qos;
    store_outbox_stats os;
    if (store_outbox_stats_get(f->st, &os) == ER_OK) {
        out->queue_depth = os.pending;
        out->dead = os.dead;
        out->dropped = os.dropped;
        out->rejected = os.rejected;
        if (os.oldest_pending_ts > 0) {
            int64_t age = util_now_ms() - os.oldest_pending_ts;
            out->oldest_pending_age_ms = age > 0 ? age : 0;
        }
    }
}

bool forwarder_restart_requested(forwarder *f)
{
    return f && atomic_load(&f->restart);
}
