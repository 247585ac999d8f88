/* live_proto.h - the live stream's client messages (docs/live.md): auth, subscribe, ping,
 * parsed from one text frame; and the subscription filter an inference is matched against.
 * Pure: no I/O, no globals; one message in, one struct out. */
#ifndef EI_LIVE_LIVE_PROTO_H
#define EI_LIVE_LIVE_PROTO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "model/inference.h"

#define LIVE_MSG_MAX_BYTES (64u * 1024u) /* a client message larger than this is refused */
#define LIVE_FILTER_MAX_ITEMS 64         /* labels or sources in one filter */
#define LIVE_FILTER_ITEM_MAX 128         /* bytes of one label or source name */

typedef struct live_filter {
    char **labels; /* owned; NULL when no label constraint */
    size_t n_labels;
    char **sources; /* owned; NULL when no source constraint */
    size_t n_sources;
    bool has_min_score; /* min_score > 0 given */
    double min_score;
} live_filter;

typedef enum live_msg_type { LIVE_MSG_AUTH = 1, LIVE_MSG_SUBSCRIBE, LIVE_MSG_PING } live_msg_type;

typedef struct live_msg {
    live_msg_type type;
    char *token;    /* auth: owned */
    bool has_since; /* auth: since_seq given */
    int64_t since_seq;
    bool has_filter; /* auth: filter given; subscribe: always */
    live_filter filter;
    char *ping_id; /* ping: the "id" member as JSON text (owned), NULL when absent */
} live_msg;

/* Parses one client message of len bytes (need not be NUL-terminated). On error out is left
 * empty and err says what is wrong: ER_TOOBIG (over LIVE_MSG_MAX_BYTES), ER_INVALID (not
 * JSON), ER_SHAPE (wrong type or fields), ER_NOMEM (out of memory, also inside cJSON's parse:
 * never reported as ER_INVALID, the message may well be good). */
er_rc live_msg_parse(const char *text, size_t len, live_msg *out, er_err *err);
void live_msg_free(live_msg *m);

void live_filter_free(live_filter *f);
/* Moves src into dst (dst freed first, src left empty). */
void live_filter_move(live_filter *dst, live_filter *src);
/* True when inf passes every constraint of f (labels from inf->labels, top_score, source). */
bool live_filter_match(const live_filter *f, const inference *inf);
/* {"labels":[..],"min_score":..,"sources":[..]} with empty lists and 0 for no constraint;
 * NULL when out of memory. */
cJSON *live_filter_to_json(const live_filter *f);

#endif
