/* inference.c - constructors and helpers for the canonical inference. */
#include "model/inference.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [INFERENCE_EMPTY] = "empty",
    [INFERENCE_CLASSIFICATION] = "classification",
    [INFERENCE_OBJECT_DETECTION] = "object-detection",
    [INFERENCE_VISUAL_ANOMALY] = "visual-anomaly",
    [INFERENCE_ANOMALY] = "anomaly",
    [INFERENCE_FREEFORM] = "freeform",
};

const char *inference_kind_name(inference_kind k)
{
    if ((size_t)k < sizeof kind_names / sizeof kind_names[0]) return kind_names[k];
    return "empty";
}

int inference_kind_parse(const char *s)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (strcmp(s, kind_names[i]) == 0) return (int)i;
    return -1;
}

static const char *const publish_names[] = {
    [INFERENCE_PUBLISH_NONE] = "disabled",       [INFERENCE_PUBLISH_PENDING] = "pending",
    [INFERENCE_PUBLISH_PUBLISHED] = "published", [INFERENCE_PUBLISH_FILTERED] = "filtered",
    [INFERENCE_PUBLISH_SKIPPED] = "skipped",     [INFERENCE_PUBLISH_DROPPED] = "dropped",
    [INFERENCE_PUBLISH_DEAD] = "dead",
};

const char *inference_publish_name(inference_publish p)
{
    if ((size_t)p < sizeof publish_names / sizeof publish_names[0]) return publish_names[p];
    return "unknown";
}

inference *inference_create(void)
{
    return calloc(1, sizeof(inference));
}

void inference_destroy(inference *inf)
{
    if (!inf) return;
    free(inf->device);
    free(inf->source);
    free(inf->result_json);
    free(inf->timing_json);
    free(inf->info_json);
    for (size_t i = 0; i < inf->n_labels; i++)
        free(inf->labels[i].label);
    free(inf->labels);
    free(inf->label_slots);
    free(inf->top_label);
    free(inf->image.data);
    free(inf);
}

er_rc inference_set_str(char **dst, const char *s)
{
    char *copy = NULL;
    if (s) {
        copy = strdup(s);
        if (!copy) return ER_NOMEM;
    }
    free(*dst);
    *dst = copy;
    return ER_OK;
}

/* FNV-1a: labels are short, and an attacker choosing them only makes probes longer, which the
 * table's load (at most half full) keeps short on average. */
static size_t label_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

/* The slot of label in the hash: the one holding it, or the free one where it goes. */
static size_t label_slot(inference *inf, const char *label)
{
    size_t mask = inf->label_slots_cap - 1;
    size_t i = label_hash(label) & mask;
    for (; inf->label_slots[i]; i = (i + 1) & mask) {
        inf->label_probes++;
        if (strcmp(inf->labels[inf->label_slots[i] - 1].label, label) == 0) break;
    }
    return i;
}

/* Makes room for one more label: the array doubles, and the hash is rebuilt (twice the labels'
 * room) when it is missing or would pass half full. */
static er_rc label_room(inference *inf)
{
    if (inf->n_labels + 1 > inf->labels_cap) {
        size_t cap = inf->n_labels < 8 ? 16 : inf->n_labels * 2;
        inference_label *grown = realloc(inf->labels, cap * sizeof *grown);
        if (!grown) return ER_NOMEM;
        inf->labels = grown;
        inf->labels_cap = cap;
    }
    if (inf->label_slots_cap >= 2 * (inf->n_labels + 1)) return ER_OK;
    size_t cap = 32;
    while (cap < 4 * (inf->n_labels + 1))
        cap *= 2;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return ER_NOMEM;
    free(inf->label_slots);
    inf->label_slots = slots;
    inf->label_slots_cap = cap;
    for (size_t k = 0; k < inf->n_labels; k++)
        slots[label_slot(inf, inf->labels[k].label)] = (uint32_t)(k + 1);
    return ER_OK;
}

er_rc inference_add_label(inference *inf, const char *label, double score)
{
    if (inf->n_labels >= UINT32_MAX - 1 || label_room(inf)) return ER_NOMEM;
    size_t slot = label_slot(inf, label);
    if (!inf->label_slots[slot]) {
        size_t i = inf->n_labels;
        inf->labels[i].label = strdup(label);
        if (!inf->labels[i].label) return ER_NOMEM;
        inf->labels[i].score = score;
        inf->label_slots[slot] = (uint32_t)(i + 1);
        inf->n_labels++;
    } else if (score > inf->labels[inf->label_slots[slot] - 1].score) {
        inf->labels[inf->label_slots[slot] - 1].score = score;
    }
    if (!inf->top_label || score > inf->top_score) {
        er_rc rc = inference_set_str(&inf->top_label, label);
        if (rc) return rc;
        inf->top_score = score;
    }
    return ER_OK;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

size_t inference_footprint(const inference *inf)
{
    size_t n = 128 + slen(inf->device) + slen(inf->source) + slen(inf->result_json) +
               slen(inf->timing_json) + slen(inf->info_json) + inf->image.len;
    for (size_t i = 0; i < inf->n_labels; i++)
        n += 32 + strlen(inf->labels[i].label);
    return n;
}
