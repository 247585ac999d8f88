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

er_rc inference_add_label(inference *inf, const char *label, double score)
{
    size_t i;
    for (i = 0; i < inf->n_labels; i++)
        if (strcmp(inf->labels[i].label, label) == 0) break;
    if (i == inf->n_labels) {
        inference_label *grown = realloc(inf->labels, (inf->n_labels + 1) * sizeof *grown);
        if (!grown) return ER_NOMEM;
        inf->labels = grown;
        grown[i].label = strdup(label);
        if (!grown[i].label) return ER_NOMEM;
        grown[i].score = score;
        inf->n_labels++;
    } else if (score > inf->labels[i].score) {
        inf->labels[i].score = score;
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
