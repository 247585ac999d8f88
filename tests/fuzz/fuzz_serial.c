/* fuzz_serial.c - the serial firmware-output parser on arbitrary bytes, fed in chunks whose
 * sizes come from the input's first bytes: must never crash, leak or overflow its line buffers,
 * and every inference it emits must be complete and agree with its own kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sources/serial_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks each inference's invariants, then frees it (the harness owns what is emitted). */
static void check_emit(void *arg, inference *inf)
{
    size_t *count = arg;
    if (!inf || !inf->result_json || inf->result_json[0] != '{' ||
        strlen(inf->guid) != UTIL_UUID_LEN || !inf->device || !inf->source ||
        (inf->n_labels > 0 && !inf->top_label) ||
        (inf->kind == INFERENCE_EMPTY && strcmp(inf->result_json, "{\"bounding_boxes\":[]}")) ||
        (inf->kind == INFERENCE_CLASSIFICATION &&
         !strstr(inf->result_json, "\"classification\"")) ||
        (inf->kind == INFERENCE_FREEFORM && !strstr(inf->result_json, "\"freeform\"")) ||
        (inf->image.data && (inf->image.len < 4 || inf->image.width < 1 || inf->image.height < 1 ||
                             strcmp(inf->image.mime, "image/jpeg"))))
        abort();
    (*count)++;
    inference_destroy(inf);
}

static int64_t fixed_clock(void)
{
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* small line buffers so the fuzzer reaches the over-long-line paths cheaply (the debug
     * fixture's Framebuffer lines, about 2 KB, still fit the second) */
    static const serial_parser_opts opts = {.device = "fuzz",
                                            .source = "fuzz",
                                            .max_line = 80,
                                            .max_framebuffer = 4096,
                                            .now_ms = fixed_clock};
    serial_parser *p = NULL;
    serial_parser_counters st;
    er_err err;
    size_t count = 0, off, n_sizes;
    const uint8_t *sizes = data;
    if (serial_parser_create(&opts, &p, &err) != ER_OK) abort();
    /* The first byte says how many following bytes are chunk sizes (0..7); they cycle. */
    n_sizes = size ? data[0] % 8 : 0;
    if (1 + n_sizes > size) n_sizes = 0;
    sizes = data + 1;
    off = size ? 1 + n_sizes : 0;
    for (size_t i = 0; off < size; i++) {
        size_t k = n_sizes ? (size_t)sizes[i % n_sizes] + 1 : size - off;
        if (k > size - off) k = size - off;
        if (serial_parser_feed(p, data + off, k, check_emit, &count) != ER_OK) abort();
        off += k;
    }
    if (serial_parser_finish(p, check_emit, &count) != ER_OK) abort();
    serial_parser_counters_get(p, &st);
    if (st.inferences != count || st.long_lines > st.lines || st.images > count) abort();
    serial_parser_destroy(p);
    return 0;
}
