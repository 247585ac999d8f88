/* commands.h - the Edge Impulse commands received on .../command/input as
 * {"cmd":"<verb>","value":<optional>} and their replies {"result":{...}} for .../command/output,
 * with the reply shapes of the Edge Impulse Greengrass components, plus ei-relay's get_status.
 *
 * commands_parse is pure. commands_handle acts through the store (clear_cache, persisted
 * settings), the policy (threshold filter) and the forwarder's callbacks (status, model metrics
 * reset, restart), and always yields a reply: a malformed or unknown command gets
 * {"result":{"error":"..."}}. Owned by the forwarder; runs on the forwarder thread.
 *
 * restart: the reply is sent, then the restart callback runs; the forwarder only records the
 * request (forwarder_restart_requested), and main exits with its restart code so the
 * supervisor (Greengrass, systemd) starts it again, as the old components' SIGINT did. */
#ifndef EI_FORWARD_COMMANDS_H
#define EI_FORWARD_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/rc.h"
#include "core/util.h"
#include "forward/policy.h"
#include "store/store.h"

#define COMMANDS_MAX_BYTES 65536 /* a command is a few bytes; refuse anything bigger */

/* Store meta keys of the settings a command changes (loaded over the config at start). */
#define COMMANDS_META_ENABLED "threshold.enabled"
#define COMMANDS_META_VALUE "threshold.value"
#define COMMANDS_META_CRITERIA "threshold.criteria"
#define COMMANDS_META_MODEL_INFO "model_info"
#define COMMANDS_META_HANDLED "command.handled" /* see commands_handled */

typedef enum commands_verb {
    COMMANDS_RESTART = 0,
    COMMANDS_ENABLE_THRESHOLD,
    COMMANDS_DISABLE_THRESHOLD,
    COMMANDS_GET_THRESHOLD_CONFIG,
    COMMANDS_SET_CRITERIA,
    COMMANDS_GET_CRITERIA,
    COMMANDS_SET_CONFIDENCE,
    COMMANDS_GET_CONFIDENCE,
    COMMANDS_GET_MODEL_INFO,
    COMMANDS_RESET_METRICS,
    COMMANDS_CLEAR_CACHE,
    COMMANDS_CLEAR_CACHE_FILE,
    COMMANDS_GET_STATUS,
    COMMANDS_VERB_COUNT
} commands_verb;

typedef struct commands_cmd {
    commands_verb verb;
    bool has_number; /* value was a number (or a string holding one) */
    double number;
    bool has_text; /* value was a string */
    char text[128];
} commands_cmd;

/* Parses one command. ER_INVALID / ER_SHAPE with a sentence in err (for the error reply) when
 * the payload is not JSON, not an object, has no string "cmd", names an unknown verb, lacks a
 * value the verb needs or has one of the wrong type. */
er_rc commands_parse(const char *payload, size_t len, commands_cmd *out, er_err *err);

/* The verb's name ("clear_cache_file"), NULL if out of range. */
const char *commands_verb_name(commands_verb v);

typedef struct commands_ctx {
    store *st;
    policy *pol;
    void *arg;
    /* get_status: adds the forwarder's fields to obj (a cJSON object) */
    void (*status)(void *arg, void *obj);
    void (*reset_model_metrics)(void *arg); /* reset_metrics: a new model metrics window */
    void (*restart)(void *arg);
} commands_ctx;

/* Handles one command payload and appends the reply JSON to reply. Returns ER_OK when a reply
 * was produced (error replies included), ER_NOMEM otherwise. */
er_rc commands_handle(const commands_ctx *c, const char *payload, size_t len, util_buf *reply);

/* Applies the threshold settings persisted by earlier commands over the configured ones. */
er_rc commands_load_persisted(store *st, policy *pol);

/* ---- retained commands that could not be cleared ----
 * A command is cleared after it ran (an empty retained message). When the broker refuses that
 * publish (an IoT policy without iot:RetainPublish; mosquitto's ACL drops it silently) the
 * command stays retained and comes back, flagged retained, on every new subscription. The
 * forwarder remembers the ids of the commands it ran since the topic was last seen cleared
 * (persisted in the store, so a restart does not run them again) and does not run such a
 * replay twice. An empty message on the topic (its own clear echoed back, or anyone's) proves
 * nothing is retained any more and empties the list, so the same command sent retained again
 * later runs. The newest COMMANDS_HANDLED_MAX are kept: only the last retained command can
 * come back, but a live delivery does not say whether it was retained. */
#define COMMANDS_HANDLED_MAX 16
#define COMMANDS_ID_LEN 16 /* hex digits of a 64-bit digest of the payload */

typedef struct commands_handled {
    char ids[COMMANDS_HANDLED_MAX][COMMANDS_ID_LEN + 1]; /* newest first */
    int n;
} commands_handled;

/* The id of a command payload (FNV-1a 64 of its bytes, hex). */
void commands_id(const char *payload, size_t len, char out[COMMANDS_ID_LEN + 1]);
bool commands_handled_has(const commands_handled *h, const char *id);
/* Puts id first (once), dropping the oldest beyond COMMANDS_HANDLED_MAX. */
void commands_handled_add(commands_handled *h, const char *id);
/* The list persisted as meta COMMANDS_META_HANDLED (ids separated by spaces; entries that are
 * not ids are skipped); an empty list when there is none. */
void commands_handled_load(store *st, commands_handled *h);
er_rc commands_handled_save(store *st, const commands_handled *h);

#endif
