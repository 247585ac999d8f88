/* fuzz_json_parse.c - core/json_parse.c against cJSON on arbitrary bytes: both must accept the
 * same texts and build the same tree (types, keys, strings, every number's double bit for bit
 * and its int, the list links with the head's prev at the tail), ending at the same byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const cJSON *a, const cJSON *b)
{
    if (!a || !b) {
        if (a != b) abort();
        return;
    }
    if (a->type != b->type || a->valueint != b->valueint ||
        memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) != 0)
        abort();
    if ((a->string == NULL) != (b->string == NULL) || (a->string && strcmp(a->string, b->string)))
        abort();
    if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
        (a->valuestring && strcmp(a->valuestring, b->valuestring)))
        abort();
    const cJSON *x = a->child, *y = b->child;
    if ((x == NULL) != (y == NULL)) abort();
    if (x && (x->prev == NULL) != (y->prev == NULL)) abort();
    for (; x || y; x = x->next, y = y->next) {
        if (!x || !y) abort();
        same(x, y);
        if (x->next == NULL && a->child->prev != x) abort(); /* head's prev is the tail */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *end_ours = NULL, *end_cjson = NULL;
    cJSON *ours = json_parse(text, size, &end_ours);
    cJSON *theirs = cJSON_ParseWithLengthOpts(text, size, &end_cjson, 0);
    if ((ours == NULL) != (theirs == NULL)) abort();
    if (ours && end_ours != end_cjson) abort();
    if (end_ours < text || end_ours > text + size) abort();
    same(ours, theirs);
    cJSON_Delete(ours);
    cJSON_Delete(theirs);
    return 0;
}
