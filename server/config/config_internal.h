/* config_internal.h - what the config module's files share, not for other modules: the row type
 * of the settings table and the table itself (config_table.c), the state of one load, the value
 * setter (config_value.c) and the Edge Impulse seed-key compatibility (config_seed.c) that the
 * loader (config_load.c) and the printers (config_print.c) build on. */
#ifndef EI_CONFIG_CONFIG_INTERNAL_H
#define EI_CONFIG_CONFIG_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define CFG_NONE_TEXT "__none__"    /* the recipes' "unset" */
#define CFG_PARAMETERS "Parameters" /* the recipes' object of settings */
#define CFG_NAME_MAX 64             /* longest setting name we try to match or suggest */
#define CFG_BOOL_WORDS "false|true|no|yes|off|on|0|1"
#define CFG_ROLE_NAMES "read|ingest|admin"

typedef enum cfg_opt_type {
    CFG_OT_STRING,
    CFG_OT_INT,
    CFG_OT_BOOL,
    CFG_OT_DOUBLE,
    CFG_OT_ENUM,
    CFG_OT_SIZE,
    CFG_OT_DURATION,
    CFG_OT_TOKENS,
    CFG_OT_SOURCES,
    CFG_OT_IGNORED, /* seed key accepted for compatibility, no field */
} cfg_opt_type;

enum {
    CFG_OF_SECRET = 1u << 0,   /* values masked in --print-config */
    CFG_OF_NONEMPTY = 1u << 1, /* strings: "" is refused */
    CFG_OF_PERCENT = 1u << 2,  /* doubles: a value above 1 is a percentage */
};

/* One row of the settings table. */
typedef struct cfg_opt {
    const char *name;
    cfg_opt_type type;
    size_t off, width;   /* the field in struct config */
    const char *def;     /* default as text, parsed like any other value; NULL = unset */
    int64_t min, max;    /* ints, sizes (bytes), durations (ms), doubles */
    const char *choices; /* enums: "a|b|c", stored as base + index */
    int base;
    int64_t unit_ms; /* durations: what a plain number counts */
    unsigned flags;
    const char *help;
} cfg_opt;

/* ---- the table (config_table.c) ---- */

/* The rows and their number. CFG_OPTS_MAX sizes the per-load flag arrays; config_table.c checks
 * at compile time that the table fits, so adding a setting is adding its row. */
#define CFG_OPTS_MAX 128
extern const cfg_opt cfg_opts[];
extern const size_t cfg_n_opts;

/* The row named name exactly, or NULL. */
const cfg_opt *cfg_find_opt(const char *name);
/* The row whose name is within two edits of name, for "did you mean" hints, or NULL. */
const cfg_opt *cfg_nearest_opt(const char *name);
/* "http_port" -> "http-port", the flag's spelling. */
void cfg_kebab_name(const char *name, char *out, size_t cap);

/* The field a row points at in c; the pointers live as long as c. */
void *cfg_field(config *c, const cfg_opt *o);
const void *cfg_cfield(const config *c, const cfg_opt *o);
/* Integers are stored into, and read from, an int or int64_t field, whichever the row points
 * at. */
void cfg_store_int(config *c, const cfg_opt *o, int64_t v);
int64_t cfg_load_int(const config *c, const cfg_opt *o);

/* ---- one load (config_load.c owns it; the setter and the seed code fill it in) ---- */

typedef struct cfg_loader {
    config *c;                          /* borrowed: the config being filled */
    config_sources_check check_sources; /* NULL: sources is only checked to be an array */
    bool ignored_set[CFG_OPTS_MAX];     /* which ignored seed keys are currently set */
    /* which settings a file, variable or flag gave a value ("__none__" gives none): those
     * greengrass_file leaves alone. cfg_set_text and cfg_set_default keep it. */
    bool explicit_set[CFG_OPTS_MAX];
} cfg_loader;

/* Appends " (what where)" to err's message, saying where the bad value came from (nothing when
 * where is NULL). */
void cfg_err_origin(er_err *err, const char *what, const char *where);

/* ---- values (config_value.c) ---- */

/* Index of s among "a|b|c" (case-insensitive), or -1. */
int cfg_choice_index(const char *choices, const char *s);
/* Copies the idx-th name of "a|b|c" into out ("?" if out of range). */
void cfg_choice_name(const char *choices, int idx, char *out, size_t cap);
/* The shortest exact text of a duration: "30d", "90s", "500ms"; "0" for zero. */
void cfg_format_duration(int64_t ms, char *out, size_t cap);

/* Parses text as o's type, checks it and stores it: the one path every source goes through.
 * "__none__" resets the setting (cfg_set_default). Marks the setting explicit (or, for
 * "__none__", not). */
er_rc cfg_set_text(cfg_loader *ld, const cfg_opt *o, const char *text, er_err *err);
/* Strings without default become NULL, everything else takes its default. */
er_rc cfg_set_default(cfg_loader *ld, const cfg_opt *o, er_err *err);
/* Validates a tokens array, or checks a sources array with ld->check_sources, (borrowed) and
 * stores it. */
er_rc cfg_set_array(cfg_loader *ld, const cfg_opt *o, const cJSON *arr, er_err *err);
void cfg_free_tokens(config_token *t, size_t n);

/* ---- Edge Impulse seed-key compatibility (config_seed.c) ---- */

/* A JSON value from the file (borrowed): strings, numbers, booleans and null become text for
 * cfg_set_text. */
er_rc cfg_set_json(cfg_loader *ld, const cfg_opt *o, const cJSON *v, er_err *err);
/* Replaces c->ignored_keys with the names of the ignored seed keys that are set. */
er_rc cfg_list_ignored(cfg_loader *ld, er_err *err);

/* ---- greengrass_file (config_greengrass.c) ---- */

/* Once every other source is applied: when greengrass_file is set, fills each mqtt_* setting
 * it holds that is not explicit, and writes c->greengrass_notes (and c->greengrass_warning when
 * the file does not exist, which is not an error). A file that exists but cannot be read or
 * holds anything else fails with ER_CONFIG naming it. */
er_rc cfg_apply_greengrass(cfg_loader *ld, er_err *err);

#endif
