/* serial_parse_internal.h - what the serial parser's two files share (not for other files):
 *   serial_parse.c       the public API, line buffering (incl. the one long Framebuffer line),
 *                        the open block's life cycle and its canonical inference;
 *   serial_parse_line.c  one complete line classified: block and section headers, result lines,
 *                        the debug window's lines, noise.
 * Names shared between them are sp__*. */
#ifndef EI_SOURCES_SERIAL_PARSE_INTERNAL_H
#define EI_SOURCES_SERIAL_PARSE_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "sources/serial_parse.h"

#define SP_LABEL_MAX 128   /* bytes in one label, as normalize */
#define SP_ITEMS_MAX 10000 /* labels + boxes + cells + freeform values in one inference */
#define SP_MODEL_PX_MAX 65535

enum sp_section {
    SEC_NONE,
    SEC_CLS,
    SEC_REGRESSION,
    SEC_BOXES,
    SEC_GRID,
    SEC_TRACKING,
    SEC_FREEFORM
};
enum sp_timing { T_DSP, T_CLS, T_ANOMALY, T_POST, T_COUNT };

/* The block being collected. The cJSON pieces are owned here until the block ends. */
typedef struct sp_block {
    bool open;
    bool has_results; /* a result line (or a box/grid section header) was seen */
    int64_t ts;
    enum sp_section section;
    unsigned seen_sections; /* bit per section header seen, to spot a repeated one */
    double timing[T_COUNT];
    bool has_timing[T_COUNT];
    cJSON *cls;      /* object label: score, or NULL */
    cJSON *boxes;    /* array, or NULL; empty after "No objects found" */
    cJSON *grid;     /* array, or NULL */
    cJSON *freeform; /* array of number arrays (one per "#Freeform output"), or NULL */
    cJSON *ff_cur;   /* the last array of freeform (borrowed from it) */
    bool has_anomaly, has_vmax, has_vmean;
    double anomaly, vmax, vmean;
    size_t n_items;
} sp_block;

struct serial_parser {
    char *device; /* owned */
    char *source; /* owned */
    int64_t (*now_ms)(void);
    int model_w, model_h; /* from "Image resolution: WxH"; 0 unknown */
    sp_block b;
    serial_parser_counters st;
    serial_emit_fn emit; /* the current feed's callback and its argument (borrowed) */
    void *emit_arg;
    bool nomem;            /* a block was lost to ENOMEM during this call */
    bool overlong;         /* the current line passed its limit: skipping to its newline */
    inference_image image; /* the debug window's decoded Framebuffer, for its block; owned */
    char *fb;              /* the current line when it is a Framebuffer line past cap; owned */
    size_t fb_len, fb_cap; /* its fill and allocation */
    size_t fb_max;         /* limit of that one line */
    size_t cap, len;       /* line buffer capacity and fill */
    char line[];           /* cap + 1 bytes (room for the NUL) */
};

#define SP_FRAMEBUFFER_PREFIX "Framebuffer:"

/* serial_parse.c */
void sp__block_reset(sp_block *b);
void sp__block_open(serial_parser *p);
/* Ends the open block: emits it if it holds a result, else counts it as empty. */
void sp__block_end(serial_parser *p, serial_emit_fn emit, void *arg);
/* Drops the pending debug image. */
void sp__image_clear(serial_parser *p);
/* A whole "Framebuffer: <base64>" line (trimmed): the JPEG becomes the pending image. */
void sp__framebuffer(serial_parser *p, const char *s, size_t n);

/* serial_parse_line.c */
void sp__handle_line(serial_parser *p, const char *s, size_t n, serial_emit_fn emit, void *arg);
/* A line no block claims (ends the open block, counted as noise); may carry the model size. */
void sp__noise_line(serial_parser *p, const char *s, size_t n, serial_emit_fn emit, void *arg);

#endif
