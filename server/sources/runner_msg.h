/* runner_msg.h - the message layer of the runner-ws source: a pure state machine for the
 * preview WebSocket of `edge-impulse-linux-runner` (ws://host:4912/).
 *
 * The WebSocket client feeds every received text message to runner_session_on_message and
 * sends runner_session_greeting() once connected. No I/O, no threads, no clocks other than the
 * receive time stamped on inferences; one session belongs to one thread at a time.
 *
 * Protocol (runner v1.25.2): the server sends `hello` (project, modelParameters,
 * inferencingEngine) on connect, then one `classification` {result, timeMs, additionalInfo}
 * per inference. After the client sends {"type":"set-camera-preview","enabled":true} it also
 * sends a `camera-preview` {image: "data:image/jpeg;base64,..."} just before the
 * classification computed from that frame. Replies to client messages are
 * `handling-message-success` / `handling-message-error`.
 *
 * Pairing: a frame is kept until the next classification, which takes it (and it is cleared).
 * A classification with no frame since the previous one gets no image. A frame followed by
 * another frame is replaced (counted as unpaired). A rejected message of any kind also drops
 * the pending frame: it may have been the frame (or the classification) that belonged
 * together, and an older picture must never be attached to a later result. Apart from that, a
 * rejected message changes nothing (model info, counters other than `rejected`). */
#ifndef EI_SOURCES_RUNNER_MSG_H
#define EI_SOURCES_RUNNER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "ingest/normalize.h"
#include "model/inference.h"

/* Decoded frame limit when runner_session_opts.max_frame_bytes is 0. */
#define RUNNER_DEFAULT_MAX_FRAME_BYTES (8u * 1024u * 1024u)
/* Besides the base64 of a maximal frame, a message may carry this much (results, labels). */
#define RUNNER_MSG_OVERHEAD_BYTES (2u * 1024u * 1024u)

typedef struct runner_session runner_session;

typedef struct runner_session_opts {
    const char *source;     /* source name recorded on inferences; copied; NULL = "runner" */
    const char *device;     /* device name recorded on inferences; copied; NULL = "runner" */
    bool want_images;       /* ask for camera-preview frames and attach them */
    size_t max_frame_bytes; /* decoded frame size limit; 0 = RUNNER_DEFAULT_MAX_FRAME_BYTES */
    normalize_limits lim;   /* the result document limits; zero fields: the defaults */
} runner_session_opts;

/* Counters since creation, for the source's state in /api/v1/sources and /metrics. */
typedef struct runner_session_counters {
    uint64_t messages;        /* every message passed to on_message */
    uint64_t inferences;      /* inferences emitted */
    uint64_t frames;          /* camera-preview frames accepted */
    uint64_t frames_paired;   /* frames attached to an inference */
    uint64_t frames_unpaired; /* frames replaced or dropped before a classification came */
    uint64_t unknown;         /* well-formed messages of a type this layer ignores */
    uint64_t rejected;        /* messages rejected with an error */
    uint64_t acks;            /* handling-message-success replies */
    uint64_t runner_errors;   /* handling-message-error replies */
    uint64_t hellos;          /* hello messages accepted */
} runner_session_counters;

/* Receives one inference; the callback owns it from then on (store it or inference_destroy). */
typedef void (*runner_emit_fn)(void *arg, inference *inf);

/* o is read during the call only. */
er_rc runner_session_create(const runner_session_opts *o, runner_session **out);
/* Frees the session and a pending frame; NULL is fine. */
void runner_session_destroy(runner_session *s);

/* Text to send once connected: {"type":"set-camera-preview","enabled":true,"messageId":1}
 * when images are wanted, NULL otherwise. Owned by the session. The runner accepts it before
 * or after its hello. */
const char *runner_session_greeting(runner_session *s);

/* One received text message of len bytes (need not be NUL-terminated). Emits at most one
 * inference through emit (only on ER_OK). Errors, with err naming the problem:
 *  ER_TOOBIG   message over the size limit, or a frame over max_frame_bytes;
 *  ER_INVALID  malformed JSON, a bad data URL, bad base64, or a frame that is not the image
 *              its data URL says;
 *  ER_SHAPE    well-formed JSON of the wrong shape (not an object, no "type", a hello or
 *              classification with fields of the wrong type; normalize_json's messages);
 *  ER_NOMEM    out of memory (cJSON's included: never reported as malformed). The message is
 *              not taken: nothing changed but a pending frame the message would replace anyway,
 *              it is not counted, and the caller should hand the same message again later. */
er_rc runner_session_on_message(runner_session *s, const char *msg, size_t len, runner_emit_fn emit,
                                void *arg, er_err *err);

/* A message the transport refused before it could be parsed (a binary frame, one over the
 * size limit): counted as received and rejected, and, like any rejected message, it drops the
 * pending frame. */
void runner_session_reject(runner_session *s);

/* The last hello's model info as JSON object text, owned by the session, NULL before a hello:
 * {"project":{id,owner,name,deploy_version,impulse_id,impulse_name},"model_type":..,
 *  "modelParameters":{a subset: input sizes, labels, model_type, thresholds, ...}}.
 * Valid until the next on_message call or destroy. */
const char *runner_session_model_info(const runner_session *s);

/* The model's input resolution from the last hello (what box coordinates are in); 0 unknown. */
void runner_session_model_size(const runner_session *s, int *width, int *height);

void runner_session_counters_get(const runner_session *s, runner_session_counters *out);

/* Width and height from a JPEG's SOFn header or a PNG's IHDR, bounded by len; pure.
 * ER_INVALID when the bytes are not such an image or end before the header. */
er_rc runner_image_size(const uint8_t *data, size_t len, bool png, int *width, int *height);

#endif
