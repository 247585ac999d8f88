/* json_alloc.h - cJSON's allocator for the process: libc's malloc, remembering per thread that
 * an allocation failed. cJSON answers NULL both for malformed text and when it ran out of memory;
 * a parser that must tell the two apart (ingest: 400 for the first, a retry for the second)
 * resets the flag, parses, and asks. Without json_alloc_install the flag is never set. */
#ifndef EI_CORE_JSON_ALLOC_H
#define EI_CORE_JSON_ALLOC_H

#include <stdbool.h>

/* Installs the allocator (cJSON_InitHooks). Once, at start, before any thread uses cJSON. */
void json_alloc_install(void);
/* Forgets an earlier failure on this thread (before a parse). */
void json_alloc_reset(void);
/* Whether a cJSON allocation failed on this thread since json_alloc_reset. */
bool json_alloc_failed(void);

#endif
