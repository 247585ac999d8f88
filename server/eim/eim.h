/* eim.h - an Edge Impulse Linux model (.eim) run by the relay: its process, its unix-socket
 * protocol, and the rules the Edge Impulse runner applies around it.
 *
 * The model is an executable called as `<model file> <socket path>`. eim_model_start makes a
 * fresh directory (mkdtemp under /dev/shm, else $TMPDIR, else /tmp), spawns the model with the
 * relay's environment, waits for its socket (the model exiting first is an error carrying what it
 * printed), connects, sends `{"hello":1,"id":1}` and reads the model's parameters into an
 * eim_model_info, and maps the shared memory the model offers for the features. The model
 * accepts ONE connection and ONE hello and exits when the connection closes: a model that died,
 * timed out or broke the protocol is stopped and started again by the caller.
 *
 * Requests are compact JSON + "\n" with ids 1, 2, 3, ...; one is in flight at a time. Replies
 * end with "\n" and (from real models) a NUL byte; eim_framer splits them. A classify writes the
 * features as float32 into the shared memory and sends {"classify_shm":{"elements":N},"id":n},
 * or without shared memory sends {"classify":[...],"id":n} (one 0xRRGGBB int per pixel).
 *
 * Threads: an eim_model belongs to one thread at a time (the source's); nothing in it is
 * shared. The pure parts (eim_framer, eim_info_parse, eim_time_ms, eim_apply_runner_threshold)
 * keep no global state and are safe on any thread. */
#ifndef EI_EIM_EIM_H
#define EI_EIM_EIM_H

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

#define EIM_MAX_REPLY_BYTES (16u * 1024u * 1024u) /* a longer reply is a broken model */
#define EIM_START_TIMEOUT_MS 60000   /* socket, connection and hello, when opts give 0 */
#define EIM_CONNECT_TIMEOUT_MS 10000 /* the runner's connect timeout */
#define EIM_REPLY_TIMEOUT_MS 60000   /* the runner's reply timeout, when a call gives 0 */
#define EIM_STOP_GRACE_MS 3000       /* SIGINT, then SIGHUP, then SIGKILL, this far apart */
#define EIM_WARMUP_TIMEOUT_MS (60 * 60 * 1000) /* the runner's GPU warm-up classify */
/* The runner's own threshold block for camera classification models (see eim_model_info). */
#define EIM_RUNNER_BLOCK_ID 42
#define EIM_RUNNER_MIN_SCORE 0.001

/* ---- the reply framer: pure and incremental ---- */

/* Splits the model's byte stream into reply texts: a reply ends at "\n"; NUL bytes and empty
 * lines between replies are skipped (a real model sends "\n\0", stand-ins may send "\n"). It
 * never looks inside a reply, so braces or escaped newlines in strings cannot confuse it. */
typedef struct eim_framer eim_framer;

/* max_reply: the longest reply text accepted; 0 = EIM_MAX_REPLY_BYTES. */
er_rc eim_framer_create(size_t max_reply, eim_framer **out);
void eim_framer_destroy(eim_framer *f); /* NULL is fine */
/* Consumes bytes of data until a reply is complete; *used says how many (feed the rest again).
 *  ER_OK       *reply (NUL-terminated, without its "\n") and *reply_len hold one reply, owned
 *              by the framer until the next feed or destroy;
 *  ER_AGAIN    every byte consumed (*used == len), no reply complete yet;
 *  ER_TOOBIG   a reply grew past max_reply: it is dropped up to its "\n";
 *  ER_INVALID  a NUL byte inside a reply: it is dropped up to its "\n";
 *  ER_NOMEM. err (may be NULL) says why on the errors. */
er_rc eim_framer_feed(eim_framer *f, const void *data, size_t len, size_t *used, const char **reply,
                      size_t *reply_len, er_err *err);
/* Bytes of an incomplete reply held (0 between replies). */
size_t eim_framer_pending(const eim_framer *f);

/* ---- the model's parameters (its hello reply) ---- */

typedef struct eim_model_info {
    int64_t project_id, deploy_version;
    char *project_owner, *project_name; /* "" when the model did not say */
    int width, height;       /* image_input_width/height; 0 for a model without image input */
    int channels;            /* image_channel_count: 1 grayscale, 3 RGB, 0 no image input */
    int frames;              /* image_input_frames; 1 when the model did not say */
    char *resize_mode;       /* image_resize_mode: none|fit-shortest|fit-longest|squash, or "" */
    int sensor;              /* -1 unknown, 1 microphone, 2 accelerometer, 3 camera, 4 positional */
    const char *sensor_type; /* the runner's name for it: "camera", ...; static */
    char *model_type;        /* classification (when the model did not say) | object_detection |
                                constrained_object_detection | freeform */
    char **labels;           /* n_labels strings */
    size_t n_labels;
    int has_anomaly; /* 0 none, 1 KMeans, 2 GMM, 3 VisualGMM, 4 VisualPatchcore, ... */
    bool has_object_tracking;
    size_t input_features_count; /* what a classify must carry */
    int inferencing_engine;
    /* TensorRT (inferencing_engine 6) or an engine with "gpu_delegates": the runner first
     * classifies zeros, allowing an hour, to load the model into the GPU; start does too. */
    bool gpu_warmup;
    /* The thresholds as JSON (an array of {id, type, min_score | min_anomaly_score, ...}): the
     * model's blocks, plus the runner's block 42 {"id":42,"type":"classification",
     * "min_score":0.001} for camera classification models, as the runner adds it; kept current
     * by eim_model_set_threshold. */
    char *thresholds;
    /* The runner's minimum classification score: the min_score of the first "classification"
     * block of thresholds, else 0.001. eim_apply_runner_threshold zeroes the scores below it. */
    double min_score;
    /* The shared memory the model offered for the features (NULL/0 when none), or why not. */
    char *shm_name;
    size_t shm_size_bytes, shm_elements;
    char *shm_error; /* features_shm_error, or NULL */
    char *hello;     /* the hello reply as the model sent it */
    /* The model as the runner's preview WebSocket announces it, for the sources' "model" info:
     * {"type":"hello","project":{...},"modelParameters":{... model_parameters, defaults and
     * thresholds as above, "sensorType"},"inferencingEngine":{...}} */
    char *runner_hello;
} eim_model_info;

/* Parses a hello reply (len bytes, need not be NUL-terminated) into out (zeroed first; free it
 * with eim_info_free, also after an error). ER_INVALID: not JSON, or the model answered with an
 * error (err has its text); ER_SHAPE: a field of the wrong type or out of range (err names it);
 * ER_NOMEM. */
er_rc eim_info_parse(const char *json, size_t len, eim_model_info *out, er_err *err);
void eim_info_free(eim_model_info *info);

/* ---- the runner's rules on results ---- */

/* The runner's timeMs of a classify reply: timing.dsp + classification + postprocessing +
 * anomaly (a missing one counts 0), and 1 when that sums to 0. */
double eim_time_ms(const cJSON *reply);
/* Replaces by 0, in place, every score of reply.result.classification below min_score, as the
 * runner does before anyone sees a result (use info->min_score). Other results are untouched. */
void eim_apply_runner_threshold(cJSON *reply, double min_score);

/* ---- the model process ---- */

typedef struct eim_model eim_model;

typedef struct eim_opts {
    const char *model_file; /* path of the .eim; made absolute */
    const char *name;       /* names the model in logs and errors; NULL = "eim" */
    /* Where the socket directory is made; NULL = /dev/shm when it is a writable directory,
     * else $TMPDIR, else /tmp (the first where the socket path fits in 108 bytes). */
    const char *tmp_dir;
    bool no_shm;          /* classify with JSON even when the model offers shared memory */
    int start_timeout_ms; /* socket, connection and hello; 0 = EIM_START_TIMEOUT_MS */
    int stop_grace_ms;    /* between SIGINT, SIGHUP and SIGKILL; 0 = EIM_STOP_GRACE_MS */
    /* A descriptor that becomes readable when the caller is shutting down (e.g. a stop pipe):
     * start and every call waiting on the model then return ER_CLOSED at once. 0 or less: none. */
    int cancel_fd;
} eim_opts;

/* Starts the model. A model file without execute permission gets it added (u+x, and g+x/o+x
 * where it is readable) when the relay owns it, as the runner makes it executable; otherwise the
 * error says to chmod it. A model that needs a GPU warm-up (info.gpu_warmup) gets its classify of
 * zeros before start returns (up to EIM_WARMUP_TIMEOUT_MS; a failed one fails the start). Errors
 * (err says what): ER_NOTFOUND no such file; ER_IO it cannot be run, made executable, or it exited
 * before listening (with the end of what it printed), or the socket failed; ER_AGAIN no socket or
 * hello within start_timeout_ms; ER_INVALID the model refused hello; ER_SHAPE a hello of the wrong
 * shape; ER_CLOSED cancelled; ER_NOMEM. o is read during the call only. */
er_rc eim_model_start(const eim_opts *o, eim_model **out, er_err *err);

/* The model's parameters; owned by m, valid until eim_model_stop (a set_threshold changes
 * thresholds, min_score and runner_hello in place). */
const eim_model_info *eim_model_get_info(const eim_model *m);
bool eim_model_uses_shm(const eim_model *m); /* features go through shared memory */
int eim_model_pid(const eim_model *m);
const char *eim_model_socket_path(const eim_model *m); /* in the directory stop removes */

/* Classifies n features: pixels (0xRRGGBB ints, as preprocessing makes them) or floats. Waits
 * up to timeout_ms (0 = EIM_REPLY_TIMEOUT_MS) for the reply. ER_OK: *reply_out is the reply
 * object ({id, success, result, timing, [info]}), owned by the caller (cJSON_Delete).
 *  ER_INVALID  the model answered with an error (err has its text); it is still usable;
 *  ER_SHAPE    n does not fit the shared memory the model offered;
 *  ER_AGAIN    no reply in time;  ER_IO  the model exited, closed the connection or broke the
 *              protocol;  ER_CLOSED  cancelled. After ER_AGAIN, ER_IO or ER_CLOSED the model is
 *              broken: every later call returns ER_IO; stop it (and start another);
 *  ER_NOMEM. */
er_rc eim_model_classify(eim_model *m, const uint32_t *pixels, size_t n, int timeout_ms,
                         cJSON **reply_out, er_err *err);
er_rc eim_model_classify_float(eim_model *m, const float *features, size_t n, int timeout_ms,
                               cJSON **reply_out, er_err *err);

/* Sets key (e.g. "min_score", "min_anomaly_score") of threshold block block_id to value, as the
 * runner's threshold overrides do, and records it in the info's thresholds. The runner's own
 * block 42 is the relay's: it changes min_score without asking the model. ER_NOTFOUND no such
 * block in the thresholds; otherwise as eim_model_classify (timeout: start_timeout_ms). */
er_rc eim_model_set_threshold(eim_model *m, int block_id, const char *key, double value,
                              er_err *err);

/* Stops the model and frees m: SIGINT, SIGHUP after stop_grace_ms, SIGKILL after as long again;
 * reaps it, unmaps and removes (if the model left it) its shared memory, removes the socket
 * directory. Returns the model's wait status (as waitpid gives it), or -1 for NULL. */
int eim_model_stop(eim_model *m);

#endif
