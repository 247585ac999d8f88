/* json_print.h - cJSON_PrintUnformatted, byte for byte, without its per-number cost.
 *
 * cJSON 1.7.15 prints every number with sprintf("%1.15g"), reads it back with sscanf and,
 * when that does not give the number back, prints it again with "%1.17g": about 7,000
 * instructions per number, a third of an ingest request's CPU on the HTTP threads. Here a
 * number that some decimal of at most 15 significant digits gives back exactly (0.9453, a
 * timestamp) is found with a few multiplications and checked with one strtod; that decimal is
 * the one "%1.15g" prints (no two such decimals name the same double), so the text is the same.
 * Every other number takes cJSON's own path. Strings, raw members, arrays and objects are
 * written as cJSON writes them. */
#ifndef EI_CORE_JSON_PRINT_H
#define EI_CORE_JSON_PRINT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The text cJSON_PrintUnformatted(item) gives, malloc'd (free() it); NULL when cJSON's would
 * be NULL (item NULL, a raw member without text, an unknown type) or out of memory. */
char *json_print(const cJSON *item);

/* One number as cJSON prints it; out holds at least JSON_PRINT_NUMBER_MAX bytes; returns the
 * length written (NUL-terminated). */
#define JSON_PRINT_NUMBER_MAX 32
size_t json_print_number(double d, char *out);

#endif
