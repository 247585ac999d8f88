/* fuzz_runner.c - the runner-ws message layer on arbitrary bytes: the input is split at '\n'
 * into messages fed to one session (images wanted, small frame limit). It must never crash,
 * leak or read past a message, every emitted inference must be complete, and a rejected
 * message must say why and emit nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sources/runner_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_sink {
    size_t emitted;
} fuzz_sink;

static void check_and_free(void *arg, inference *inf)
{
    fuzz_sink *k = arg;
    k->emitted++;
    if (!inf || !inf->result_json || strlen(inf->guid) != UTIL_UUID_LEN ||
        (inf->n_labels > 0 && !inf->top_label) || inf->image.len > 4096 ||
        (inf->image.data && (inf->image.width <= 0 || inf->image.height <= 0)))
        abort();
    inference_destroy(inf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    runner_session_opts o = {
        .source = "fuzz", .device = "fuzz", .want_images = true, .max_frame_bytes = 4096};
    runner_session *s = NULL;
    if (runner_session_create(&o, &s) != ER_OK) return 0;
    if (!runner_session_greeting(s)) abort();
    const char *p = (const char *)data, *end = p + size;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        /* Each message in its own allocation so ASan sees a read past its end. */
        char *msg = malloc(len ? len : 1);
        if (!msg) break;
        memcpy(msg, p, len);
        fuzz_sink k = {0};
        er_err err;
        err.msg[0] = '\0';
        er_rc rc = runner_session_on_message(s, msg, len, check_and_free, &k, &err);
        if (rc != ER_OK && (k.emitted != 0 || err.msg[0] == '\0')) abort();
        if (k.emitted > 1) abort();
        free(msg);
        if (!nl) break;
        p = nl + 1;
    }
    const char *info = runner_session_model_info(s);
    if (info && info[0] != '{') abort();
    runner_session_destroy(s);
    return 0;
}
