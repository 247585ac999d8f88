/* eim_info.c - the model's hello reply read into an eim_model_info, the runner's additions to it
 * (defaults, sensorType, its threshold block 42 for camera classification models, the minimum
 * classification score), and the runner's rules on results (timeMs, zeroed low scores). Pure:
 * no I/O, no global state. The info owns every string in it; eim_info_free frees them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "eim/eim_internal.h"

#define MAX_SIDE 65535
#define MAX_FEATURES (64 * 1024 * 1024)

static const struct {
    int sensor;
    const char *name;
} sensor_names[] = {{1, "microphone"}, {2, "accelerometer"}, {3, "camera"}, {4, "positional"}};

static const char *sensor_type(int sensor)
{
    for (size_t i = 0; i < sizeof sensor_names / sizeof sensor_names[0]; i++)
        if (sensor_names[i].sensor == sensor) return sensor_names[i].name;
    return "unknown";
}

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
}

/* obj[name] as a whole number in [lo, hi] (a bool as 0 or 1: has_object_tracking is one);
 * absent or null gives def. */
static er_rc get_int(const cJSON *obj, const char *where, const char *name, double lo, double hi,
                     int64_t def, int64_t *out, er_err *err)
{
    const cJSON *v = member(obj, name);
    *out = def;
    if (!v || cJSON_IsNull(v)) return ER_OK;
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return ER_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != floor(v->valuedouble))
        return er_fail(err, ER_SHAPE, "hello: %s.%s must be a whole number %.0f..%.0f", where, name,
                       lo, hi);
    *out = (int64_t)v->valuedouble;
    return ER_OK;
}

/* A copy of obj[name] when it is a string, of def when absent; *out is NULL only on ER_NOMEM. */
static er_rc get_str(const cJSON *obj, const char *where, const char *name, const char *def,
                     char **out, er_err *err)
{
    const cJSON *v = member(obj, name);
    const char *s = def;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v))
            return er_fail(err, ER_SHAPE, "hello: %s.%s must be a string", where, name);
        s = v->valuestring;
    }
    *out = strdup(s);
    return *out ? ER_OK : er_fail(err, ER_NOMEM, "out of memory");
}

static er_rc read_labels(eim_model_info *in, const cJSON *labels, er_err *err)
{
    if (!labels || cJSON_IsNull(labels)) return ER_OK;
    if (!cJSON_IsArray(labels))
        return er_fail(err, ER_SHAPE, "hello: model_parameters.labels must be an array");
    size_t n = (size_t)cJSON_GetArraySize(labels);
    in->labels = calloc(n ? n : 1, sizeof *in->labels);
    if (!in->labels) return er_fail(err, ER_NOMEM, "out of memory");
    for (const cJSON *l = labels->child; l; l = l->next) {
        if (!cJSON_IsString(l))
            return er_fail(err, ER_SHAPE, "hello: model_parameters.labels must be strings");
        if (!(in->labels[in->n_labels] = strdup(l->valuestring)))
            return er_fail(err, ER_NOMEM, "out of memory");
        in->n_labels++;
    }
    return ER_OK;
}

/* The offered shared memory, when well-formed: a name "/x" without another slash, float32,
 * elements * 4 <= size_bytes. Anything else is recorded in shm_error and not used. */
static er_rc read_shm(eim_model_info *in, const cJSON *root, er_err *err)
{
    const cJSON *shm = member(root, "features_shm"), *e = member(root, "features_shm_error");
    const cJSON *name = member(shm, "name"), *type = member(shm, "type");
    const cJSON *size = member(shm, "size_bytes"), *elements = member(shm, "elements");
    const char *why = NULL;
    if (cJSON_IsString(e)) why = e->valuestring;
    if (!shm || cJSON_IsNull(shm)) goto out;
    if (!cJSON_IsString(name) || name->valuestring[0] != '/' ||
        strchr(name->valuestring + 1, '/') || strlen(name->valuestring) > 200 ||
        !cJSON_IsString(type) || strcmp(type->valuestring, "float32") != 0 ||
        !cJSON_IsNumber(size) || !cJSON_IsNumber(elements) || !(elements->valuedouble >= 1) ||
        !(elements->valuedouble <= MAX_FEATURES) ||
        elements->valuedouble != floor(elements->valuedouble) ||
        !(size->valuedouble >= elements->valuedouble * 4) ||
        !(size->valuedouble <= 4.0 * MAX_FEATURES)) {
        why = "features_shm is not a float32 shared memory the relay can use";
        goto out;
    }
    if (!(in->shm_name = strdup(name->valuestring))) return er_fail(err, ER_NOMEM, "out of memory");
    in->shm_size_bytes = (size_t)size->valuedouble;
    in->shm_elements = (size_t)elements->valuedouble;
out:
    if (why && !(in->shm_error = strdup(why))) return er_fail(err, ER_NOMEM, "out of memory");
    return ER_OK;
}

/* inferencing_engine {engine_type, properties}: GPU delegates want the runner's warm-up. */
static er_rc read_engine(eim_model_info *in, const cJSON *engine, er_err *err)
{
    const cJSON *props = member(engine, "properties");
    if (engine && !cJSON_IsNull(engine) && !cJSON_IsObject(engine))
        return er_fail(err, ER_SHAPE, "hello: inferencing_engine must be an object");
    for (const cJSON *p = cJSON_IsArray(props) ? props->child : NULL; p; p = p->next)
        if (cJSON_IsString(p) && strcmp(p->valuestring, "gpu_delegates") == 0)
            in->gpu_warmup = true;
    return ER_OK;
}

double eim__min_score(const cJSON *thresholds)
{
    for (const cJSON *t = cJSON_IsArray(thresholds) ? thresholds->child : NULL; t; t = t->next) {
        const cJSON *type = member(t, "type"), *min = member(t, "min_score");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "classification") != 0) continue;
        return cJSON_IsNumber(min) ? min->valuedouble : EIM_RUNNER_MIN_SCORE;
    }
    return EIM_RUNNER_MIN_SCORE;
}

/* obj[key] = a number or string (replaced in place when present, else added). */
static bool set_item(cJSON *obj, const char *key, cJSON *v)
{
    bool ok = v && (cJSON_GetObjectItemCaseSensitive(obj, key)
                        ? cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v)
                        : cJSON_AddItemToObject(obj, key, v));
    if (!ok) cJSON_Delete(v);
    return ok;
}

/* The runner's block 42, appended to the thresholds of camera classification models. */
static bool add_runner_block(cJSON *thresholds)
{
    cJSON *block = cJSON_CreateObject();
    bool ok = block && cJSON_AddNumberToObject(block, "id", EIM_RUNNER_BLOCK_ID) &&
              cJSON_AddStringToObject(block, "type", "classification") &&
              cJSON_AddNumberToObject(block, "min_score", EIM_RUNNER_MIN_SCORE) &&
              cJSON_AddItemToArray(thresholds, block);
    if (!ok) cJSON_Delete(block);
    return ok;
}

/* Builds the runner's view of the hello (see eim.h) into *out: {type, project, modelParameters
 * (the model's, with the runner's defaults, block 42 and sensorType), inferencingEngine}. */
static er_rc runner_view(const cJSON *root, const eim_model_info *in, cJSON **out, er_err *err)
{
    const cJSON *project = member(root, "project"), *engine = member(root, "inferencing_engine");
    cJSON *view = cJSON_CreateObject();
    cJSON *params = cJSON_Duplicate(member(root, "model_parameters"), 1);
    cJSON *proj = cJSON_IsObject(project) ? cJSON_Duplicate(project, 1) : cJSON_CreateObject();
    cJSON *eng = cJSON_IsObject(engine) ? cJSON_Duplicate(engine, 1) : cJSON_CreateObject();
    bool ok = view && params && proj && eng;
    if (ok) {
        const cJSON *type = member(params, "model_type");
        cJSON *thresholds = (cJSON *)member(params, "thresholds");
        if (!(cJSON_IsString(type) && type->valuestring[0]))
            ok = set_item(params, "model_type", cJSON_CreateString(in->model_type));
        if (ok && !member(params, "image_input_frames"))
            ok = set_item(params, "image_input_frames", cJSON_CreateNumber(1));
        if (ok && cJSON_IsArray(thresholds) && in->sensor == 3 &&
            strcmp(in->model_type, "classification") == 0)
            ok = add_runner_block(thresholds);
        ok = ok && set_item(params, "sensorType", cJSON_CreateString(in->sensor_type));
    }
    /* view owns each part once added */
    if ((ok = ok && cJSON_AddStringToObject(view, "type", "hello") &&
              cJSON_AddItemToObject(view, "project", proj)))
        proj = NULL;
    if ((ok = ok && cJSON_AddItemToObject(view, "modelParameters", params))) params = NULL;
    if ((ok = ok && cJSON_AddItemToObject(view, "inferencingEngine", eng))) eng = NULL;
    cJSON_Delete(proj);
    cJSON_Delete(params);
    cJSON_Delete(eng);
    if (!ok) {
        cJSON_Delete(view);
        return er_fail(err, ER_NOMEM, "out of memory");
    }
    *out = view;
    return ER_OK;
}

er_rc eim__info_texts(eim_model_info *in, const cJSON *view, er_err *err)
{
    const cJSON *p = member(view, "modelParameters"), *t = member(p, "thresholds");
    char *th = cJSON_IsArray(t) ? cJSON_PrintUnformatted(t) : strdup("[]");
    char *rh = cJSON_PrintUnformatted(view);
    if (!th || !rh) {
        free(th);
        free(rh);
        return er_fail(err, ER_NOMEM, "out of memory");
    }
    free(in->thresholds);
    free(in->runner_hello);
    in->thresholds = th;
    in->runner_hello = rh;
    in->min_score = eim__min_score(t);
    return ER_OK;
}

static er_rc read_params(eim_model_info *in, const cJSON *mp, er_err *err)
{
    const char *w = "model_parameters";
    int64_t v[9];
    er_rc rc;
    if ((rc = get_int(mp, w, "image_input_width", 0, MAX_SIDE, 0, &v[0], err)) ||
        (rc = get_int(mp, w, "image_input_height", 0, MAX_SIDE, 0, &v[1], err)) ||
        (rc = get_int(mp, w, "image_channel_count", 0, 4, 0, &v[2], err)) ||
        (rc = get_int(mp, w, "image_input_frames", 0, 1024, 1, &v[3], err)) ||
        (rc = get_int(mp, w, "sensor", -1e9, 1e9, -1, &v[4], err)) ||
        (rc = get_int(mp, w, "has_anomaly", 0, 255, 0, &v[5], err)) ||
        (rc = get_int(mp, w, "has_object_tracking", 0, 1, 0, &v[6], err)) ||
        (rc = get_int(mp, w, "input_features_count", 0, MAX_FEATURES, 0, &v[7], err)) ||
        (rc = get_int(mp, w, "inferencing_engine", 0, 1e9, 0, &v[8], err)) ||
        (rc = get_str(mp, w, "image_resize_mode", "", &in->resize_mode, err)) ||
        (rc = get_str(mp, w, "model_type", "", &in->model_type, err)) ||
        (rc = read_labels(in, member(mp, "labels"), err)))
        return rc;
    const cJSON *t = member(mp, "thresholds");
    in->gpu_warmup = v[8] == 6; /* TensorRT */
    if (t && !cJSON_IsNull(t) && !cJSON_IsArray(t))
        return er_fail(err, ER_SHAPE, "hello: model_parameters.thresholds must be an array");
    for (const cJSON *b = t ? t->child : NULL; b; b = b->next)
        if (!cJSON_IsObject(b))
            return er_fail(err, ER_SHAPE, "hello: model_parameters.thresholds must be objects");
    if (!in->model_type[0]) {
        free(in->model_type);
        if (!(in->model_type = strdup("classification")))
            return er_fail(err, ER_NOMEM, "out of memory");
    }
    in->width = (int)v[0];
    in->height = (int)v[1];
    in->channels = (int)v[2];
    in->frames = (int)v[3];
    in->sensor = (int)v[4];
    in->sensor_type = sensor_type(in->sensor);
    in->has_anomaly = (int)v[5];
    in->has_object_tracking = v[6] != 0;
    in->input_features_count = (size_t)v[7];
    in->inferencing_engine = (int)v[8];
    return ER_OK;
}

er_rc eim_info_parse(const char *json, size_t len, eim_model_info *out, er_err *err)
{
    er_rc rc;
    cJSON *root = cJSON_ParseWithLength(json, len), *view = NULL;
    memset(out, 0, sizeof *out);
    const cJSON *ok = member(root, "success"), *e = member(root, "error");
    const cJSON *project = member(root, "project"), *mp = member(root, "model_parameters");
    if (!cJSON_IsObject(root) || !util_utf8_valid(json, len)) {
        rc = er_fail(err, ER_INVALID, "hello: the reply is not a JSON object in UTF-8");
        goto fail;
    }
    if (!cJSON_IsTrue(ok)) {
        rc = er_fail(err, ER_INVALID, "the model refused hello: %.200s",
                     cJSON_IsString(e) ? e->valuestring : "no reason given");
        goto fail;
    }
    if (project && !cJSON_IsObject(project)) {
        rc = er_fail(err, ER_SHAPE, "hello: project must be an object");
        goto fail;
    }
    if (!cJSON_IsObject(mp)) {
        rc = er_fail(err, ER_SHAPE, "hello: model_parameters must be an object");
        goto fail;
    }
    if ((rc = get_int(project, "project", "id", -9e15, 9e15, 0, &out->project_id, err)) ||
        (rc = get_int(project, "project", "deploy_version", -9e15, 9e15, 0, &out->deploy_version,
                      err)) ||
        (rc = get_str(project, "project", "owner", "", &out->project_owner, err)) ||
        (rc = get_str(project, "project", "name", "", &out->project_name, err)) ||
        (rc = read_params(out, mp, err)) || (rc = read_shm(out, root, err)) ||
        (rc = read_engine(out, member(root, "inferencing_engine"), err)) ||
        (rc = runner_view(root, out, &view, err)) || (rc = eim__info_texts(out, view, err)))
        goto fail;
    if (!(out->hello = malloc(len + 1))) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(out->hello, json, len);
    out->hello[len] = '\0';
fail:
    cJSON_Delete(view);
    cJSON_Delete(root);
    return rc;
}

void eim_info_free(eim_model_info *in)
{
    if (!in) return;
    for (size_t i = 0; i < in->n_labels; i++)
        free(in->labels[i]);
    free(in->labels);
    free(in->project_owner);
    free(in->project_name);
    free(in->resize_mode);
    free(in->model_type);
    free(in->thresholds);
    free(in->shm_name);
    free(in->shm_error);
    free(in->hello);
    free(in->runner_hello);
    memset(in, 0, sizeof *in);
}

er_rc eim__info_set_threshold(eim_model_info *in, int block_id, const char *key, double value,
                              er_err *err)
{
    er_rc rc = ER_OK;
    cJSON *view = cJSON_Parse(in->runner_hello ? in->runner_hello : "");
    cJSON *t = (cJSON *)member(member(view, "modelParameters"), "thresholds"), *block = NULL;
    for (cJSON *b = cJSON_IsArray(t) ? t->child : NULL; b && !block; b = b->next) {
        const cJSON *id = member(b, "id");
        if (cJSON_IsNumber(id) && id->valuedouble == block_id) block = b;
    }
    if (!block) {
        rc = er_fail(err, ER_NOTFOUND, "no threshold block %d in the model", block_id);
        goto fail;
    }
    if (!set_item(block, key, cJSON_CreateNumber(value))) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    rc = eim__info_texts(in, view, err);
fail:
    cJSON_Delete(view);
    return rc;
}

double eim_time_ms(const cJSON *reply)
{
    static const char *const parts[] = {"dsp", "classification", "postprocessing", "anomaly"};
    const cJSON *timing = member(reply, "timing");
    double ms = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        const cJSON *v = member(timing, parts[i]);
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) ms += v->valuedouble;
    }
    return ms == 0 ? 1 : ms;
}

void eim_apply_runner_threshold(cJSON *reply, double min_score)
{
    cJSON *c = (cJSON *)member(member(reply, "result"), "classification");
    for (cJSON *s = cJSON_IsObject(c) ? c->child : NULL; s; s = s->next)
        if (cJSON_IsNumber(s) && s->valuedouble < min_score) cJSON_SetNumberValue(s, 0);
}
