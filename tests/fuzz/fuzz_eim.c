/* fuzz_eim.c - the .eim model's reply stream on arbitrary bytes: byte 0 % 8 = how many of the
 * next bytes are chunk sizes (each + 1, cycled; none: one chunk); the rest is what a model
 * wrote on its socket, fed to eim_framer (a small bound, 4096 bytes) in those chunks. Every reply
 * it yields is read as a hello (eim_info_parse), and as a classify reply (timeMs, the runner's
 * threshold). It must never crash, leak or read past the input; every reply must be within the
 * bound without "\n" or NUL; the framer must consume every byte; a parsed hello must be complete
 * and survive a threshold change. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eim/eim.h"
#include "eim/eim_internal.h"

#define FUZZ_MAX_REPLY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_info(const eim_model_info *in)
{
    if (!in->project_owner || !in->project_name || !in->resize_mode || !in->model_type ||
        !in->model_type[0] || !in->sensor_type || !in->thresholds || in->thresholds[0] != '[' ||
        !in->hello || !in->runner_hello ||
        strncmp(in->runner_hello, "{\"type\":\"hello\",", 16) != 0 || !isfinite(in->min_score) ||
        in->width < 0 || in->width > 65535 || in->height < 0 || in->height > 65535 ||
        in->channels < 0 || in->channels > 4 || (in->n_labels && !in->labels) ||
        (in->shm_name && (in->shm_name[0] != '/' || in->shm_size_bytes < in->shm_elements * 4)))
        abort();
    for (size_t i = 0; i < in->n_labels; i++)
        if (!in->labels[i]) abort();
}

static void on_reply(const char *text, size_t len)
{
    if (len > FUZZ_MAX_REPLY || memchr(text, '\n', len) || memchr(text, '\0', len) ||
        text[len] != '\0')
        abort();
    /* as a hello, from a copy of exactly len bytes so ASan sees a read past it */
    char *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, text, len);
    eim_model_info in;
    er_err err;
    err.msg[0] = '\0';
    er_rc rc = eim_info_parse(copy, len, &in, &err);
    if (rc == ER_OK) {
        check_info(&in);
        if (strcmp(in.hello, text) != 0) abort();
        er_rc t = eim__info_set_threshold(&in, 42, "min_score", 0.25, &err);
        if (t != ER_OK && t != ER_NOTFOUND && t != ER_NOMEM) abort();
        check_info(&in);
    } else if (!err.msg[0]) {
        abort();
    }
    eim_info_free(&in);
    free(copy);
    /* as a classify reply */
    cJSON *r = cJSON_ParseWithLength(text, len);
    double ms = eim_time_ms(r);
    if (!(ms > 0 || ms < 0) || isnan(ms)) abort(); /* never 0: the runner counts it as 1 */
    eim_apply_runner_threshold(r, 0.5);
    cJSON_Delete(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t k = data[0] % 8;
    if (size < 1 + k) return 0;
    const uint8_t *sizes = data + 1, *p = data + 1 + k;
    size_t left = size - 1 - k, turn = 0;
    eim_framer *f = NULL;
    if (eim_framer_create(FUZZ_MAX_REPLY, &f) != ER_OK) return 0;
    while (left > 0) {
        size_t chunk = k ? (size_t)sizes[turn++ % k] + 1 : left;
        if (chunk > left) chunk = left;
        /* each chunk in its own allocation so ASan sees a read past it */
        uint8_t *c = malloc(chunk);
        if (!c) break;
        memcpy(c, p, chunk);
        size_t off = 0;
        while (off < chunk) {
            size_t used = 0, rlen = 0;
            const char *reply = NULL;
            er_err err;
            er_rc rc = eim_framer_feed(f, c + off, chunk - off, &used, &reply, &rlen, &err);
            if (used > chunk - off || (rc != ER_AGAIN && used == 0)) abort();
            off += used;
            if (rc == ER_OK)
                on_reply(reply, rlen);
            else if (rc == ER_AGAIN && off != chunk)
                abort();
            if (eim_framer_pending(f) > FUZZ_MAX_REPLY) abort();
        }
        free(c);
        p += chunk;
        left -= chunk;
    }
    eim_framer_destroy(f);
    return 0;
}
