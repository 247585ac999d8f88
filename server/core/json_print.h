/* json_print.h - cJSON_PrintUnformatted, byte for byte, without its per-number cost.
 *
 * cJSON 1.7.15 prints every number with sprintf("%1.15g"), reads it back with sscanf and,
 * when that does not give the number back, prints it again with "%1.17g": about 7,000
 * instructions per number, a third of an ingest request's CPU on the HTTP threads. Here a
 * number that some decimal of at most 15 significant digits gives back exactly (0.9453, a
 * timestamp) is found with a few multiplications and checked exactly with one division (the
 * digits and the power of ten are exact doubles, so the quotient is what strtod would give);
 * that decimal is
 * the one "%1.15g" prints (no two such decimals name the same double), so the text is the same.
 * Every other number takes cJSON's own path. Strings, raw members, arrays and objects are
 * written as cJSON writes them. */
#ifndef EI_CORE_JSON_PRINT_H
#define EI_CORE_JSON_PRINT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/rc.h"
#include "core/util.h"

/* The text cJSON_PrintUnformatted(item) gives, malloc'd (free() it); NULL when cJSON's would
 * be NULL (item NULL, a raw member without text, an unknown type) or out of memory. */
char *json_print(const cJSON *item);

/* One number as cJSON prints it; out holds at least JSON_PRINT_NUMBER_MAX bytes; returns the
 * length written (NUL-terminated). */
#define JSON_PRINT_NUMBER_MAX 32
size_t json_print_number(double d, char *out);

/* A text being written the same way, for renderers that need no tree (the ingest answer): start
 * from {0}, append, then take. An append that runs out of memory marks the buffer failed and
 * the later ones do nothing, so a renderer checks once, at json_buf_take. */
typedef struct json_buf {
    char *p; /* owned until taken */
    size_t len, cap;
    bool failed;
} json_buf;

void json_buf_raw(json_buf *b, const char *s, size_t n); /* bytes as they are */
void json_buf_string(json_buf *b, const char *s);        /* a JSON string (NULL: "") */
void json_buf_number(json_buf *b, double d);
/* item as json_print writes it; false (and the buffer failed) where json_print gives NULL */
bool json_buf_value(json_buf *b, const cJSON *item);
/* The text (malloc'd, the caller's), or NULL when an append failed; b is empty afterwards. */
char *json_buf_take(json_buf *b);

/* s as a JSON string (json_buf_string's bytes) appended to out, for writers that build into a
 * util_buf (the IoT Core message): ER_OK, or ER_NOMEM with out's text as it was. */
er_rc json_string_append(util_buf *out, const char *s);

#endif
