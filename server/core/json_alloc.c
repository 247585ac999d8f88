/* json_alloc.c - see json_alloc.h. free() stays cJSON's free: the project frees cJSON's printed
 * strings with free(). */
#include "core/json_alloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static _Thread_local bool g_failed;

static void *json_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p) g_failed = true;
    return p;
}

void json_alloc_install(void)
{
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = json_malloc, .free_fn = free});
}

void json_alloc_reset(void)
{
    g_failed = false;
}

bool json_alloc_failed(void)
{
    return g_failed;
}
