/* paho_pub.c - bare paho publisher for the forwarder benchmark (forward.sh): the baseline that
 * ei-relay's outbox drain is compared with. It connects with the same client options as
 * server/forward/mqtt.c (paho async TLS client, MQTT 3.1.1, TLS 1.2, server certificate and
 * host name verified, client certificate, clean session, paho's maxInflight = the window) and
 * publishes N copies of one payload at QoS 1 keeping at most WINDOW unacknowledged, counting
 * PUBACKs (onSuccess). Nothing else: no store, no message building, so this is the ceiling a
 * forwarder on the same broker can reach. With MODE "callback" the next message is published
 * from paho's PUBACK callback (paho's receive thread, its client mutex held), as ei-relay's
 * forwarder does, instead of from the main thread woken by the callback.
 *
 * Build: cc -std=c11 -O2 -D_GNU_SOURCE paho_pub.c -o paho_pub -lpaho-mqtt3as -lpthread
 * Usage: paho_pub HOST PORT CA CERT KEY TOPIC PAYLOAD_FILE N WINDOW [callback]
 * Prints one line: PAHO n=.. window=.. acked=.. failed=.. bytes=.. connect_ms=.. publish_ms=..
 * rate=.. (rate = acked / publish time, from the first publish to the last PUBACK).
 * Exit status 0 when every message was acknowledged. Owned by the benchmark (tests/bench). */
#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_TIMEOUT_S 10
#define ACK_TIMEOUT_S 60 /* no PUBACK progress for this long: give up */

/* Shared between the main thread and paho's callback thread, guarded by mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected; /* 0 waiting, 1 up, -1 failed or lost */
static long in_flight, acked, failed, sent;
static char conn_error[256];
/* What the callback publishes in callback mode (set before connecting, read-only after). */
static MQTTAsync client;
static const char *pub_topic;
static const char *pub_payload;
static size_t pub_len;
static long pub_n;
static int from_callback;

static void on_puback(void *ctx, MQTTAsync_successData *d);
static void on_pub_failed(void *ctx, MQTTAsync_failureData *d);

/* Publishes one message (either thread); on a refusal the counts are taken back and the main
 * thread, signalled, tries again. */
static int publish_one(void)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_puback;
    ro.onFailure = on_pub_failed;
    int prc = MQTTAsync_send(client, pub_topic, (int)pub_len, pub_payload, 1, 0, &ro);
    if (prc != MQTTASYNC_SUCCESS) {
        pthread_mutex_lock(&mu);
        in_flight--;
        sent--;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
    }
    return prc;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void deadline_in(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

static void set_connected(int v, const char *why)
{
    pthread_mutex_lock(&mu);
    connected = v;
    if (why) snprintf(conn_error, sizeof conn_error, "%s", why);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_connected(void *ctx, MQTTAsync_successData *d)
{
    (void)ctx;
    (void)d;
    set_connected(1, NULL);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData *d)
{
    (void)ctx;
    set_connected(-1, d && d->message ? d->message : "connect failed");
}

static void on_lost(void *ctx, char *cause)
{
    (void)ctx;
    set_connected(-1, cause ? cause : "connection lost");
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    (void)ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_puback(void *ctx, MQTTAsync_successData *d)
{
    (void)ctx;
    (void)d;
    pthread_mutex_lock(&mu);
    in_flight--;
    acked++;
    int next = from_callback && sent < pub_n && connected == 1;
    if (next) {
        sent++;
        in_flight++;
    } else {
        pthread_cond_signal(&cv);
    }
    pthread_mutex_unlock(&mu);
    if (next) publish_one();
}

static void on_pub_failed(void *ctx, MQTTAsync_failureData *d)
{
    (void)ctx;
    (void)d;
    pthread_mutex_lock(&mu);
    in_flight--;
    failed++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || n > 131072 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto done;
    buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    *len = (size_t)n;
done:
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 10 && !(argc == 11 && strcmp(argv[10], "callback") == 0)) {
        fprintf(stderr, "usage: %s HOST PORT CA CERT KEY TOPIC PAYLOAD_FILE N WINDOW [callback]\n",
                argv[0]);
        return 2;
    }
    from_callback = argc == 11;
    const char *host = argv[1], *topic = argv[6];
    long n = strtol(argv[8], NULL, 10), window = strtol(argv[9], NULL, 10);
    size_t len = 0;
    char *payload = read_file(argv[7], &len);
    char uri[300];
    int rc = 1, prc;
    if (!payload || n < 1 || window < 1 || window > 65535) {
        fprintf(stderr, "paho_pub: bad payload file (1..131072 bytes), N or WINDOW\n");
        free(payload);
        return 2;
    }
    snprintf(uri, sizeof uri, "ssl://%s:%s", host, argv[2]);
    pub_topic = topic;
    pub_payload = payload;
    pub_len = len;
    pub_n = n;

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.sendWhileDisconnected = 0;
    prc = MQTTAsync_createWithOptions(&client, uri, "ei-bench-paho-pub",
                                      MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (prc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "paho_pub: create: %s\n", MQTTAsync_strerror(prc));
        client = NULL;
        goto out;
    }
    MQTTAsync_setCallbacks(client, NULL, on_lost, on_message, NULL);
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    ssl.trustStore = argv[3];
    ssl.keyStore = argv[4];
    ssl.privateKey = argv[5];
    ssl.enableServerCertAuth = 1;
    ssl.verify = 1;
    ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
    MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer;
    cn.keepAliveInterval = 60;
    cn.cleansession = 1;
    cn.MQTTVersion = MQTTVERSION_3_1_1;
    cn.maxInflight = (int)window;
    cn.connectTimeout = CONNECT_TIMEOUT_S;
    cn.automaticReconnect = 0;
    cn.ssl = &ssl;
    cn.onSuccess = on_connected;
    cn.onFailure = on_connect_failed;

    double t_conn = now_ms();
    prc = MQTTAsync_connect(client, &cn);
    if (prc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "paho_pub: connect: %s\n", MQTTAsync_strerror(prc));
        goto out;
    }
    struct timespec dl;
    deadline_in(&dl, CONNECT_TIMEOUT_S + 2);
    pthread_mutex_lock(&mu);
    while (connected == 0)
        if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT) break;
    int up = connected;
    pthread_mutex_unlock(&mu);
    if (up != 1) {
        fprintf(stderr, "paho_pub: not connected: %s\n", conn_error[0] ? conn_error : "timeout");
        goto out;
    }
    double t0 = now_ms();

    int stuck = 0;
    for (;;) {
        pthread_mutex_lock(&mu);
        deadline_in(&dl, ACK_TIMEOUT_S);
        long seen = acked; /* in callback mode this wait lasts the whole run: give up only
                            * when no PUBACK came for ACK_TIMEOUT_S */
        while (in_flight >= window && connected == 1 && sent < n) {
            if (pthread_cond_timedwait(&cv, &mu, &dl) != ETIMEDOUT) continue;
            if (acked == seen) break;
            seen = acked;
            deadline_in(&dl, ACK_TIMEOUT_S);
        }
        int done = sent >= n;
        if (!done && (connected != 1 || in_flight >= window))
            stuck = 1;
        else if (!done) {
            in_flight++;
            sent++;
        }
        pthread_mutex_unlock(&mu);
        if (done || stuck) break;
        prc = publish_one(); /* a refusal takes the counts back */
        if (prc == MQTTASYNC_SUCCESS) continue;
        pthread_mutex_lock(&mu);
        if (prc == MQTTASYNC_MAX_MESSAGES_INFLIGHT || prc == MQTTASYNC_MAX_BUFFERED_MESSAGES) {
            /* paho frees its slot just after onSuccess: wait for the next ack and retry */
            struct timespec shortdl;
            clock_gettime(CLOCK_REALTIME, &shortdl);
            shortdl.tv_nsec += 1000000;
            if (shortdl.tv_nsec >= 1000000000) {
                shortdl.tv_sec++;
                shortdl.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&cv, &mu, &shortdl);
        } else {
            fprintf(stderr, "paho_pub: send: %s\n", MQTTAsync_strerror(prc));
            stuck = 1;
        }
        pthread_mutex_unlock(&mu);
    }
    /* wait for the last PUBACKs */
    pthread_mutex_lock(&mu);
    deadline_in(&dl, ACK_TIMEOUT_S);
    while (in_flight > 0 && connected == 1)
        if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT) break;
    long a = acked, f = failed;
    pthread_mutex_unlock(&mu);
    double t1 = now_ms();
    double secs = (t1 - t0) / 1e3;
    printf("PAHO n=%ld window=%ld acked=%ld failed=%ld bytes=%zu connect_ms=%.1f publish_ms=%.1f "
           "rate=%.1f\n",
           n, window, a, f, len, t0 - t_conn, t1 - t0, secs > 0 ? (double)a / secs : 0.0);
    fflush(stdout);
    rc = (a == n) ? 0 : 1;
    if (rc) fprintf(stderr, "paho_pub: only %ld of %ld acknowledged (%s)\n", a, n, conn_error);
out:
    if (client) {
        if (MQTTAsync_isConnected(client)) {
            MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
            d.timeout = 1000;
            MQTTAsync_disconnect(client, &d);
            /* give the DISCONNECT a moment to leave before the client is destroyed */
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        MQTTAsync_destroy(&client);
    }
    free(payload);
    return rc;
}
