/* api_sources.c - see api_sources.h. */
#include "http/api_sources.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "sources/sources.h"

static bool add_source(cJSON *arr, const sources_status *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return false;
    }
    bool ok = cJSON_AddStringToObject(o, "name", s->name) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "kind", s->kind) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "state", s->state) != NULL;
    ok = ok && (s->last_error[0] ? cJSON_AddStringToObject(o, "last_error", s->last_error) != NULL
                                 : cJSON_AddNullToObject(o, "last_error") != NULL);
    bool serial = strcmp(s->kind, "serial") == 0, runner = strcmp(s->kind, "runner-ws") == 0;
    const struct {
        const char *name;
        uint64_t v;
        bool shown; /* each kind shows the counters it keeps */
    } nums[] = {{"inferences", s->inferences, true},
                {"reconnects", s->reconnects, true},
                {"backoff_ms", (uint64_t)s->backoff_ms, true},
                {"bytes", s->bytes, serial},
                {"lines", s->lines, serial},
                {"long_lines", s->long_lines, serial},
                {"noise_lines", s->noise_lines, serial},
                {"empty_blocks", s->empty_blocks, serial},
                {"dropped", s->dropped, serial},
                {"messages", s->messages, runner},
                {"frames", s->frames, runner},
                {"frames_paired", s->frames_paired, runner},
                {"unknown", s->unknown, runner},
                {"rejected", s->rejected, runner}};
    for (size_t i = 0; ok && i < sizeof nums / sizeof nums[0]; i++)
        if (nums[i].shown) ok = cJSON_AddNumberToObject(o, nums[i].name, (double)nums[i].v) != NULL;
    return ok;
}

enum MHD_Result http_api_sources(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    sources *src = r->srv->deps.src;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "sources") : NULL;
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < sources_count(src); i++) {
        sources_status s;
        if (sources_status_get(src, i, &s) == ER_OK) ok = add_source(arr, &s);
    }
    if (!ok) {
        cJSON_Delete(o);
        return http_reply_error(r, 500, "internal", "out of memory rendering the sources");
    }
    return http_reply_cjson(r, 200, o);
}
