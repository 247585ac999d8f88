/* fuzz_live.c - the live stream's client message parser and filter on arbitrary bytes: the
 * input is one message. It must never crash or leak; an accepted message must be complete
 * (auth has a token, filters are within their bounds) and round-trip through the filter's
 * JSON; a refused one must say why. The parsed filter is matched against a fixed inference. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "live/live_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Its own allocation so ASan sees a read past the end. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    live_msg m;
    er_err err = {{0}};
    er_rc rc = live_msg_parse(text, size, &m, &err);
    if (rc != ER_OK) {
        if (!err.msg[0] || m.token || m.filter.labels || m.filter.sources) abort();
    } else {
        if (m.type == LIVE_MSG_AUTH && !m.token) abort();
        if (m.filter.n_labels > LIVE_FILTER_MAX_ITEMS || m.filter.n_sources > LIVE_FILTER_MAX_ITEMS)
            abort();
        if (m.filter.has_min_score && (m.filter.min_score <= 0 || m.filter.min_score > 1)) abort();
        inference inf;
        memset(&inf, 0, sizeof inf);
        inference_label labels[] = {{.label = "person", .score = 0.8},
                                    {.label = "car", .score = 0.3}};
        inf.labels = labels;
        inf.n_labels = 2;
        inf.top_label = "person";
        inf.top_score = 0.8;
        inf.source = "camera";
        (void)live_filter_match(&m.filter, &inf);
        cJSON *j = live_filter_to_json(&m.filter);
        if (!j) abort();
        cJSON_Delete(j);
    }
    live_msg_free(&m);
    free(text);
    return 0;
}
