/* mqtt.c - see mqtt.h. */
#include "forward/mqtt.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"

struct mqtt {
    MQTTAsync client;
    mqtt_callbacks cb;
    mqtt_opts o;        /* the caller's strings, which outlive us (see mqtt.h) */
    pthread_mutex_t mu; /* guards gen, ssl_error and disconnected (paho's threads read/write) */
    uint64_t gen;
    pthread_cond_t cv;
    char ssl_error[200];
    bool disconnected;
};

/* ALPN protocol list in wire format: length byte, then the name. */
static const unsigned char alpn_iot[] = "\x0ex-amzn-mqtt-ca";

static int on_ssl_error(const char *str, size_t len, void *u)
{
    mqtt *m = u;
    pthread_mutex_lock(&m->mu);
    size_t n = len < sizeof m->ssl_error - 1 ? len : sizeof m->ssl_error - 1;
    memcpy(m->ssl_error, str, n);
    while (n > 0 && (m->ssl_error[n - 1] == '\n' || m->ssl_error[n - 1] == '\r'))
        n--;
    m->ssl_error[n] = '\0';
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static uint64_t cur_gen(mqtt *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t g = m->gen;
    pthread_mutex_unlock(&m->mu);
    return g;
}

static void on_connected(void *ctx, MQTTAsync_successData *d)
{
    mqtt *m = ctx;
    m->cb.connected(m->cb.arg, cur_gen(m));
}

static const char *connack_reason(int code)
{
    switch (code) {
    case 1:
        return "the broker refused the protocol version";
    case 2:
        return "the broker refused the client id";
    case 3:
        return "the broker is unavailable";
    case 4:
        return "bad user name or password";
    case 5:
        return "not authorized";
    default:
        return NULL;
    }
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData *d)
{
    mqtt *m = ctx;
    char reason[320];
    char ssl[sizeof m->ssl_error];
    pthread_mutex_lock(&m->mu);
    memcpy(ssl, m->ssl_error, sizeof ssl);
    uint64_t gen = m->gen;
    pthread_mutex_unlock(&m->mu);
    int code = d ? d->code : MQTTASYNC_FAILURE;
    const char *why = connack_reason(code);
    if (ssl[0])
        snprintf(reason, sizeof reason, "TLS: %s", ssl);
    else if (why)
        snprintf(reason, sizeof reason, "CONNACK %d: %s", code, why);
    else if (d && d->message)
        snprintf(reason, sizeof reason, "%s", d->message);
    else
        snprintf(reason, sizeof reason, "%s (%d)", MQTTAsync_strerror(code), code);
    m->cb.down(m->cb.arg, gen, false, reason);
}

static void on_lost(void *ctx, char *cause)
{
    mqtt *m = ctx;
    char reason[256];
    snprintf(reason, sizeof reason, "connection lost%s%s", cause ? ": " : "", cause ? cause : "");
    m->cb.down(m->cb.arg, cur_gen(m), true, reason);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    mqtt *m = ctx;
    /* topic_len is 0 when the topic is NUL-terminated */
    char *t = topic;
    char *copy = NULL;
    if (topic_len > 0 && (copy = malloc((size_t)topic_len + 1))) {
        memcpy(copy, topic, (size_t)topic_len);
        copy[topic_len] = '\0';
        t = copy;
    }
    m->cb.message(m->cb.arg, cur_gen(m), t, msg->payload,
                  msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0, msg->retained != 0);
    free(copy);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1; /* handled: paho must not redeliver */
}

static void on_sent(void *ctx, MQTTAsync_successData *d)
{
    mqtt *m = ctx;
    m->cb.done(m->cb.arg, cur_gen(m), d ? d->token : 0, true);
}

static void on_send_failed(void *ctx, MQTTAsync_failureData *d)
{
    mqtt *m = ctx;
    m->cb.done(m->cb.arg, cur_gen(m), d ? d->token : 0, false);
}

static void on_disconnect_done(mqtt *m)
{
    pthread_mutex_lock(&m->mu);
    m->disconnected = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void on_disconnected(void *ctx, MQTTAsync_successData *d)
{
    on_disconnect_done(ctx);
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData *d)
{
    on_disconnect_done(ctx);
}

/* Starts one connection attempt on the existing client; the outcome arrives as connected or
 * down. */
static er_rc start_attempt(mqtt *m, er_err *err)
{
    er_rc rc = ER_IO;
    const mqtt_opts *o = &m->o;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    ssl.trustStore = o->ca;
    ssl.keyStore = o->cert;
    ssl.privateKey = o->key;
    ssl.enableServerCertAuth = 1;
    ssl.verify = 1; /* host name check */
    ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
    ssl.ssl_error_cb = on_ssl_error;
    ssl.ssl_error_context = m;
    if (o->port == 443) {
        ssl.protos = alpn_iot;
        ssl.protos_len = sizeof alpn_iot - 1;
    }
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.keepAliveInterval = o->keepalive_s;
    co.cleansession = 1;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.maxInflight = o->max_inflight > 0 ? o->max_inflight : 10;
    co.connectTimeout = 10;
    co.automaticReconnect = 0;
    co.ssl = &ssl; /* paho copies the options */
    co.onSuccess = on_connected;
    co.onFailure = on_connect_failed;
    co.context = m;
    int prc = MQTTAsync_connect(m->client, &co);
    if (prc != MQTTASYNC_SUCCESS) {
        er_fail(err, rc, "MQTT connect to %s:%d: %s", o->host, o->port, MQTTAsync_strerror(prc));
        goto fail;
    }
    return ER_OK;
fail:
    return rc;
}

er_rc mqtt_connect(const mqtt_opts *o, const mqtt_callbacks *cb, mqtt **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    char uri[320];
    int prc;
    mqtt *m = calloc(1, sizeof *m);
    if (!m) goto fail;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->cb = *cb;
    m->o = *o;
    m->gen = o->gen;
    rc = ER_CONFIG;
    if (snprintf(uri, sizeof uri, "ssl://%s:%d", o->host, o->port) >= (int)sizeof uri) {
        er_fail(err, rc, "mqtt_endpoint is too long");
        goto fail;
    }
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.sendWhileDisconnected = 0;
    prc = MQTTAsync_createWithOptions(&m->client, uri, o->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                      NULL, &co);
    if (prc != MQTTASYNC_SUCCESS) {
        m->client = NULL;
        er_fail(err, rc, "cannot create the MQTT client for %s: %s", uri, MQTTAsync_strerror(prc));
        goto fail;
    }
    prc = MQTTAsync_setCallbacks(m->client, m, on_lost, on_message, NULL);
    if (prc != MQTTASYNC_SUCCESS) {
        er_fail(err, rc, "MQTT callbacks: %s", MQTTAsync_strerror(prc));
        goto fail;
    }
    rc = start_attempt(m, err);
    if (rc) goto fail;
    *out = m;
    return ER_OK;
fail:
    mqtt_destroy(m, 0);
    return rc;
}

er_rc mqtt_reconnect(mqtt *m, uint64_t gen, er_err *err)
{
    pthread_mutex_lock(&m->mu);
    m->gen = gen;
    m->ssl_error[0] = '\0'; /* from the last attempt */
    pthread_mutex_unlock(&m->mu);
    return start_attempt(m, err);
}

er_rc mqtt_publish(mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                   bool retained, int *token, er_err *err)
{
    er_rc rc = ER_INVALID;
    if (len > 268435455) {
        er_fail(err, rc, "payload of %zu bytes is over the MQTT limit", len);
        goto fail;
    }
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_sent;
    ro.onFailure = on_send_failed;
    ro.context = m;
    int prc = MQTTAsync_send(m->client, topic, (int)len, payload, qos, retained ? 1 : 0, &ro);
    switch (prc) {
    case MQTTASYNC_SUCCESS:
        *token = ro.token;
        return ER_OK;
    case MQTTASYNC_DISCONNECTED:
        rc = ER_CLOSED;
        break;
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
    case MQTTASYNC_NO_MORE_MSGIDS:
        rc = ER_AGAIN;
        break;
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_NULL_PARAMETER:
    case MQTTASYNC_TOPICNAME_TRUNCATED:
        rc = ER_INVALID;
        break;
    default:
        rc = ER_IO;
        break;
    }
    er_fail(err, rc, "publish refused by the MQTT client: %s", MQTTAsync_strerror(prc));
fail:
    return rc;
}

er_rc mqtt_subscribe(mqtt *m, const char *topic, int qos, int *token)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_sent;
    ro.onFailure = on_send_failed;
    ro.context = m;
    int prc = MQTTAsync_subscribe(m->client, topic, qos, &ro);
    if (prc != MQTTASYNC_SUCCESS) return prc == MQTTASYNC_DISCONNECTED ? ER_CLOSED : ER_IO;
    *token = ro.token;
    return ER_OK;
}

void mqtt_destroy(mqtt *m, int timeout_ms)
{
    if (!m) return;
    if (m->client) {
        if (MQTTAsync_isConnected(m->client)) {
            /* wait for the DISCONNECT to be done: destroying a client with commands still
             * queued leaks them inside paho (see mqtt.h). A client that is not connected
             * cannot flush them: the forwarder only gets here at shutdown then.
             * paho's own timeout stays 0: with one, paho waits for every publish in flight
             * but looks again only every 3 s (MQTTAsync_checkTimeouts), so a stop under load
             * took 3 s; the caller has already waited for the acks it wants. */
            MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
            d.timeout = 0;
            d.onSuccess = on_disconnected;
            d.onFailure = on_disconnect_failed;
            d.context = m;
            if (MQTTAsync_disconnect(m->client, &d) == MQTTASYNC_SUCCESS) {
                struct timespec ts;
                util_deadline(&ts, CLOCK_REALTIME, timeout_ms);
                pthread_mutex_lock(&m->mu);
                while (!m->disconnected)
                    if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT) break;
                pthread_mutex_unlock(&m->mu);
            }
        }
        MQTTAsync_destroy(&m->client);
    }
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
