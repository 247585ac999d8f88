/* json_alloc.c - see json_alloc.h. Outside a scratch scope cJSON's memory is libc's, so the
 * project frees cJSON's printed strings with free(). */
#include "core/json_alloc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define SCRATCH_FIRST 8192 /* bytes of the first chunk: the tree of a small document */

/* One chunk of a thread's scratch arena; the newest first. */
typedef struct scratch_chunk {
    struct scratch_chunk *prev;
    size_t cap, used;
    max_align_t data[];
} scratch_chunk;

static _Thread_local bool g_failed;
static _Thread_local bool t_scratch;
static _Thread_local scratch_chunk *t_chunks;

static void *scratch_alloc(size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    scratch_chunk *c = t_chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? c->cap * 2 : SCRATCH_FIRST;
        while (cap < n)
            cap *= 2;
        scratch_chunk *grown = malloc(sizeof *grown + cap);
        if (!grown) return NULL;
        grown->prev = c;
        grown->cap = cap;
        grown->used = 0;
        t_chunks = c = grown;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static bool scratch_owns(const void *p)
{
    for (const scratch_chunk *c = t_chunks; c; c = c->prev)
        if ((const char *)p >= (const char *)c->data && (const char *)p < (char *)c->data + c->cap)
            return true;
    return false;
}

static void *json_malloc(size_t n)
{
    void *p = t_scratch ? scratch_alloc(n) : malloc(n);
    if (!p) g_failed = true;
    return p;
}

static void json_free(void *p)
{
    if (t_scratch && scratch_owns(p)) return; /* given back at json_alloc_scratch_end */
    free(p);
}

void json_alloc_install(void)
{
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = json_malloc, .free_fn = json_free});
}

void json_alloc_scratch_begin(void)
{
    t_scratch = true;
}

void json_alloc_scratch_end(void)
{
    t_scratch = false;
    while (t_chunks) {
        scratch_chunk *prev = t_chunks->prev;
        free(t_chunks);
        t_chunks = prev;
    }
}

void json_alloc_reset(void)
{
    g_failed = false;
}

bool json_alloc_failed(void)
{
    return g_failed;
}

bool json_alloc_add(cJSON *o, const char *key, cJSON *item)
{
    if (item && cJSON_AddItemToObject(o, key, item)) return true;
    cJSON_Delete(item);
    return false;
}
