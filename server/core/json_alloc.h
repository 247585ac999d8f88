/* json_alloc.h - cJSON's allocator for the process: libc's malloc, remembering per thread that
 * an allocation failed. cJSON answers NULL both for malformed text and when it ran out of memory;
 * a parser that must tell the two apart (ingest: 400 for the first, a retry for the second)
 * resets the flag, parses, and asks. Without json_alloc_install the flag is never set.
 * json_alloc_add is cJSON_AddItemToObject for builders that must not half-render: on failure
 * it frees the item (cJSON's leaves it to the caller, so an unchecked call leaks it). */
#ifndef EI_CORE_JSON_ALLOC_H
#define EI_CORE_JSON_ALLOC_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* Installs the allocator (cJSON_InitHooks). Once, at start, before any thread uses cJSON. */
void json_alloc_install(void);
/* A scratch scope on this thread: from _begin to _end, cJSON's allocations come from one arena
 * that _end frees whole, and cJSON's frees of them do nothing. Parsing a document and building
 * its canonical result made ~90 malloc/free pairs per ingest request; in the arena they are a
 * pointer bump each. Every tree made in the scope must be deleted (or dropped) before _end, and
 * nothing in it may be kept past _end: copy out what is kept (strings via strdup, text via
 * json_print, whose buffer is libc's). Not nested. Without json_alloc_install it changes
 * nothing. (A node kept past _end is a use after free of the chunk, which ASan reports.) */
void json_alloc_scratch_begin(void);
void json_alloc_scratch_end(void);

/* Forgets an earlier failure on this thread (before a parse). */
void json_alloc_reset(void);
/* Whether a cJSON allocation failed on this thread since json_alloc_reset. */
bool json_alloc_failed(void);

/* Adds item (owned by o from then on) to o under key (copied). On failure, or item NULL (the
 * allocation that made it failed), item is deleted and the answer is false: the caller then
 * drops o whole rather than send it without the member. */
bool json_alloc_add(cJSON *o, const char *key, cJSON *item);

#endif
