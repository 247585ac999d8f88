/* serial_parse.h - incremental parser for the text Edge Impulse firmware prints on a serial port
 * (and `edge-impulse-run-impulse` passes through): turns it into canonical inferences.
 *
 * Pure: no I/O, fed arbitrary chunks (a line may arrive one byte at a time). Lines end in "\n"
 * or "\r\n"; a line longer than max_line is discarded up to its newline and counted, never
 * buffered past the fixed line buffer. Recognised blocks:
 *  - classic: `Predictions (DSP: 17 ms., Classification: 0 ms., Anomaly: 1 ms.):` then sections
 *    `#Classification results:`, `#Object detection results:`, `#Regression results:`,
 *    `#Visual anomaly grid results:` (+ `Visual anomaly values: Mean x Max y`),
 *    `#Object tracking results:`, and `Anomaly prediction: x`;
 *  - ESP32 camera: the same header with result lines directly under it (`anomaly score: x`);
 *  - newer SDK: `Timing: DSP 5 ms, inference 12 ms, anomaly 0 ms[, postprocessing 98 us]` (ms
 *    or us; postprocessing kept as its own timing key) then `Classification predictions:` /
 *    `Predictions:`, `Object detection bounding boxes:`, `Visual anomalies:`,
 *    `Anomaly prediction:`;
 *  - the current SDK (v1.83+): the same with a `#`: `#Classification predictions:`,
 *    `#Object detection bounding boxes:` (nothing after it = no boxes), `#Visual anomalies:` with
 *    `Visual anomaly mean: a, max: b`, `#Object tracking results:`, `#Regression prediction: v`
 *    on one line (label "value"), `#Freeform output index=N` followed by number lines (each
 *    header one array of "freeform").
 * Debug windows (AT+RUNIMPULSEDEBUG): `Begin output`, one `Framebuffer: <base64 JPEG>` line,
 * the results, dashes, `End output`: the JPEG becomes the window's inference's image (and its
 * size the model size when no `Image resolution` said it). The Framebuffer line alone may pass
 * max_line, up to max_framebuffer bytes (checked before buffering; longer ones are skipped);
 * a payload that is no JPEG is counted (bad_images) and the result is kept without it.
 * Result lines: `label: 0.99` (classification; in a regression section the printed label is
 * kept, a bare number becomes label "value"), `label (0.91) [ x: 2, y: 4, width: 8, height: 8 ]`
 * (every box kept; tracking lines `label (ID 3) [..]` keep label and score, the id is dropped
 * because the canonical box has no field for it and a score of 1 is used when none is printed),
 * `No objects found` (an empty result: kind INFERENCE_EMPTY, "bounding_boxes":[]).
 * A block ends at the next header, at a line that is no result line (boot noise, `[SER]`
 * banners, garbage, an over-long line), or at serial_parser_flush / serial_parser_finish.
 * A block with a header but no result is dropped and counted. Blank lines are ignored.
 * `Image resolution: 96x96` (printed in the runner's settings) sets model_width/height of the
 * inferences that follow. */
#ifndef EI_SOURCES_SERIAL_PARSE_H
#define EI_SOURCES_SERIAL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "model/inference.h"

#define SERIAL_PARSE_LINE_DEFAULT 1024 /* max_line when 0 is given */
#define SERIAL_PARSE_LINE_MIN 64
#define SERIAL_PARSE_LINE_MAX 65536
#define SERIAL_PARSE_FRAMEBUFFER_DEFAULT (1024 * 1024) /* max_framebuffer when 0 is given */
#define SERIAL_PARSE_FRAMEBUFFER_MAX (16 * 1024 * 1024)

typedef struct serial_parser serial_parser; /* opaque */

typedef struct serial_parser_opts {
    const char *device; /* device name on every inference; copied */
    const char *source; /* source name on every inference; copied */
    size_t max_line;    /* line buffer bytes; 0 = default, else SERIAL_PARSE_LINE_MIN..MAX */
    /* bytes of a Framebuffer line; 0 = default, else max_line..SERIAL_PARSE_FRAMEBUFFER_MAX */
    size_t max_framebuffer;
    /* Clock for inference ts (epoch ms, taken when a block's first line arrives); NULL =
     * util_now_ms. */
    int64_t (*now_ms)(void);
} serial_parser_opts;

/* Counters since create, for the source's state and /metrics. */
typedef struct serial_parser_counters {
    uint64_t bytes;        /* bytes fed */
    uint64_t lines;        /* complete lines seen (including discarded ones) */
    uint64_t long_lines;   /* lines over max_line, discarded */
    uint64_t noise_lines;  /* non-blank lines that belong to no block (banners, garbage) */
    uint64_t inferences;   /* inferences emitted */
    uint64_t empty_blocks; /* headers with no result line after them, dropped */
    uint64_t dropped;      /* result lines or blocks lost to limits or out of memory */
    uint64_t images;       /* debug snapshots attached to an emitted inference */
    uint64_t bad_images;   /* Framebuffer lines whose payload was no base64 JPEG */
} serial_parser_counters;

/* Called once per complete inference. The callee owns inf (release with inference_destroy);
 * guid is a fresh uuid, ts the block's arrival time, device/source from the options. */
typedef void (*serial_emit_fn)(void *arg, inference *inf);

/* ER_CONFIG with err filled for a max_line or max_framebuffer out of range. */
er_rc serial_parser_create(const serial_parser_opts *o, serial_parser **out, er_err *err);
/* NULL is fine. An open block is discarded (call serial_parser_finish first to keep it). */
void serial_parser_destroy(serial_parser *p);

/* Consumes all len bytes, calling emit for each inference that completes. Garbage is never an
 * error; ER_NOMEM when a block had to be dropped for lack of memory (counted in dropped; the
 * parser stays usable and the rest of data was still consumed). */
er_rc serial_parser_feed(serial_parser *p, const uint8_t *data, size_t len, serial_emit_fn emit,
                         void *arg);
/* Emits the open block, if any, without touching a partial line: for a source that saw no bytes
 * for a while (the last block of a stream otherwise waits for the next header). */
er_rc serial_parser_flush(serial_parser *p, serial_emit_fn emit, void *arg);
/* End of stream: a partial last line counts as a line, then the open block is emitted. The
 * parser is reset and may be fed a new stream (e.g. after a device reopen). */
er_rc serial_parser_finish(serial_parser *p, serial_emit_fn emit, void *arg);

/* The stream broke off (a device unplugged mid-window): the partial line, the open block and a
 * pending debug image are dropped without emitting anything (a block that held results counts
 * in dropped), so no inference is stored cut short. The parser may be fed a new stream. */
void serial_parser_abort(serial_parser *p);

void serial_parser_counters_get(const serial_parser *p, serial_parser_counters *out);

#endif
