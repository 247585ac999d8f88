/* json_parse.h - a JSON text to a cJSON tree, the tree cJSON_ParseWithLengthOpts builds (cJSON
 * 1.7.15 as Debian 12 ships it, with the fix of CVE-2023-26819: a number is its whole run), at
 * about 40 % of its cost (8.8k against 21.7k instructions for the benchmark body): numbers that a
 * double holds exactly after one multiplication or division by a power of ten (the common case:
 * scores, boxes, ms timings) are read without strtod, and strings without escapes are copied in one
 * pass. Everything else, and every quirk, is cJSON's: bytes 1..32 count as white space, a leading
 * UTF-8 byte order mark is skipped, a number is the run of "0123456789+-eE." that strtod reads (so
 * "1.", "-.5" and "1e5" are numbers),
 * "\u" with a non-hex digit is U+0000, nesting stops at 1000. tests/fuzz/fuzz_json_parse.c
 * checks it against cJSON on arbitrary bytes: the same answer, the same tree, bit for bit.
 * Nodes and strings come from cJSON's allocator (cJSON_malloc: json_alloc's arena inside a
 * scratch scope), so the tree is freed with cJSON_Delete. Numbers are read as in the C locale
 * (the relay never sets another). Pure: no I/O, no global state. */
#ifndef EI_CORE_JSON_PARSE_H
#define EI_CORE_JSON_PARSE_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses the value at the start of text[0..len) (no terminator needed, none checked). Returns
 * the tree (the caller owns it) and sets *end just past the value; NULL when the text is not
 * JSON or an allocation failed (json_alloc_failed tells which), with *end at the byte where
 * parsing stopped. Text after the value is the caller's to check. */
cJSON *json_parse(const char *text, size_t len, const char **end);

#endif
