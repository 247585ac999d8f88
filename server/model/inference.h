/* inference.h - the canonical inference every source is normalized into and the store keeps.
 *
 * Ownership: an inference owns every pointer in it (strings, label array, image bytes) and is
 * released with inference_destroy. Sources build one with ingest/normalize, hand it to the store,
 * and the store owns it from then on. */
#ifndef EI_MODEL_INFERENCE_H
#define EI_MODEL_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "core/util.h"

/* What the result holds; the string forms are stored and returned by the API. */
typedef enum inference_kind {
    INFERENCE_EMPTY = 0,        /* no classification, boxes, grid or freeform ("No objects") */
    INFERENCE_CLASSIFICATION,   /* "classification" */
    INFERENCE_OBJECT_DETECTION, /* "object-detection" */
    INFERENCE_VISUAL_ANOMALY,   /* "visual-anomaly" */
    INFERENCE_ANOMALY,          /* "anomaly": only an anomaly score */
    INFERENCE_FREEFORM,         /* "freeform" */
} inference_kind;

const char *inference_kind_name(inference_kind k);
/* Returns -1 if s names no kind. */
int inference_kind_parse(const char *s);

/* Whether an inference is to be published (forwarded) and how that went. The store records it
 * on the row: the publish policy decides at ingest (on the store's writer thread, in seq order);
 * only a PENDING decision queues an outbox row, in the same transaction; the forwarder moves a
 * row on to PUBLISHED or DEAD. The API shows the name. */
typedef enum inference_publish {
    INFERENCE_PUBLISH_NONE = 0,  /* forwarding off: no decision ("disabled" in the API) */
    INFERENCE_PUBLISH_PENDING,   /* in the outbox, waiting for the broker */
    INFERENCE_PUBLISH_PUBLISHED, /* acknowledged by the broker (PUBACK, or sent at QoS 0) */
    INFERENCE_PUBLISH_FILTERED,  /* below the threshold filter */
    INFERENCE_PUBLISH_SKIPPED,   /* empty result, or not the N-th under iotcore_backoff */
    INFERENCE_PUBLISH_DROPPED,   /* the outbox was full */
    INFERENCE_PUBLISH_DEAD,      /* failed permanently or too often: dead letter */
} inference_publish;

/* "pending", "published", ... ("disabled" for NONE, "unknown" out of range). */
const char *inference_publish_name(inference_publish p);

/* One label's score, for the label index: classification value, or the best box/cell score. */
typedef struct inference_label {
    char *label; /* owned */
    double score;
} inference_label;

typedef struct inference_image {
    uint8_t *data; /* owned; NULL when there is no image */
    size_t len;
    char mime[16]; /* "image/jpeg" or "image/png" */
    int width;
    int height;
} inference_image;

typedef struct inference {
    char guid[UTIL_UUID_LEN + 1]; /* client id if given, else generated */
    int64_t ts;                   /* epoch ms of the inference (client ts or receive time) */
    int64_t seq;                  /* assigned by the store at commit; 0 before */
    char *device;                 /* owned; device name */
    char *source;                 /* owned; source name ("http", a configured source, "demo") */
    inference_kind kind;
    char *result_json;       /* owned; canonical Edge Impulse result object as JSON text */
    char *timing_json;       /* owned; {"dsp":..,"classification":..,"anomaly":..} or NULL */
    char *info_json;         /* owned; free-form info (JSON text) or NULL */
    inference_label *labels; /* owned; per-label best score, for the index */
    size_t n_labels;
    /* the array's capacity (0: exactly n_labels, as code that builds the array itself may
     * leave it) and inference_add_label's hash of the labels (slot = 1 + index, 0 free;
     * rebuilt when missing or full) */
    size_t labels_cap;
    uint32_t *label_slots;  /* owned */
    size_t label_slots_cap; /* a power of two, at least twice n_labels; 0 = none yet */
    size_t label_probes;    /* label comparisons inference_add_label made (tests, bench) */
    char *top_label;        /* owned; label with the best score, NULL if none */
    double top_score;       /* best score; 0 if none */
    double anomaly;         /* anomaly score if has_anomaly */
    int has_anomaly;
    int model_width; /* model input resolution for box coordinates; 0 unknown */
    int model_height;
    inference_image image;
    inference_publish publish; /* filled by the store (at put, and when read); NONE before */
} inference;

/* Allocates a zeroed inference. */
inference *inference_create(void);
/* Frees the inference and everything it owns; NULL is fine. */
void inference_destroy(inference *inf);
/* Adds or raises the score of a label (keeps the best per label) and updates top_label. Finds
 * the label through a hash: constant time per call, whatever the number of labels. */
er_rc inference_add_label(inference *inf, const char *label, double score);
/* Sets the string field *dst to a copy of s (NULL clears). */
er_rc inference_set_str(char **dst, const char *s);
/* Approximate bytes this inference occupies in the cache (row + labels + image). */
size_t inference_footprint(const inference *inf);

#endif
