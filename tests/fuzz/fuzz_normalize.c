/* fuzz_normalize.c - normalize_json on arbitrary bytes: must never crash, leak or read past
 * the input, and on success must produce a complete inference. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const normalize_opts opts = {
        .device = "fuzz",
        .source = "fuzz",
        .max_image_bytes = 4096,
        .now_ms = 1,
        /* small bounds, so short inputs reach every limit's path */
        .lim = {.max_depth = 8, .max_nodes = 500, .max_result_bytes = 4096, .max_info_bytes = 512}};
    inference *inf = NULL;
    er_err err;
    er_rc rc = normalize_json((const char *)data, size, &opts, &inf, &err);
    if (rc == ER_OK) {
        /* Invariants of a successful parse. */
        if (!inf || !inf->result_json || strlen(inf->guid) != UTIL_UUID_LEN || inf->ts <= 0 ||
            (inf->n_labels > 0 && !inf->top_label) || inf->image.len > opts.max_image_bytes)
            abort();
    } else if (inf || err.msg[0] == '\0') {
        abort(); /* a failure must leave no inference and say why */
    }
    inference_destroy(inf);
    return 0;
}
