/* message.c - see message.h. cJSON keeps insertion order, which the contract fixes.
 *
 * Two ways to the same bytes. message_inference_json_cjson parses the stored JSON with cJSON and
 * prints the message with cJSON_PrintUnformatted (the reference). message_inference_json first
 * tries a single pass over the stored text: result_json, timing_json and info_json are written
 * by cJSON_PrintUnformatted (ingest, serial), and printing what cJSON parsed from its own
 * output gives the same text again, so the values are copied through instead of being parsed
 * into a tree and printed. The copy checks every token on the way: a string whose bytes cJSON
 * would print differently (a raw control byte, an escape cJSON does not write), whitespace,
 * unusual nesting or anything not strictly JSON makes it give up and fall back to the cJSON way;
 * a number whose text is not obviously cJSON's is printed again the way cJSON prints it. */
#include "model/message.h"

#include <cJSON.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_alloc.h"
#include "core/json_print.h"

/* time_ms in the old components is the runner's total inference time. */
static double total_time_ms(const cJSON *timing)
{
    double t = 0;
    static const char *const parts[] = {"dsp", "classification", "anomaly"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(timing, parts[i]);
        if (cJSON_IsNumber(v)) t += v->valuedouble;
    }
    return t;
}

static int result_count(const cJSON *payload)
{
    if (cJSON_IsArray(payload)) return cJSON_GetArraySize(payload);
    if (cJSON_IsObject(payload)) return cJSON_GetArraySize(payload);
    return 0;
}

/* A stored fragment parsed (NULL text: NULL). *nomem is set when the parse ran out of memory:
 * the message is then not made, rather than made without the fragment. A fragment cJSON cannot
 * read (never written by this program) is left out, as before. */
static cJSON *parse_stored(const char *text, bool *nomem)
{
    if (!text) return NULL;
    json_alloc_reset();
    cJSON *v = cJSON_Parse(text);
    if (!v && json_alloc_failed()) *nomem = true;
    return v;
}

/* Moves obj[name] into msg when present; false when out of memory (the item is freed). */
static bool move_member(cJSON *msg, cJSON *obj, const char *name)
{
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(obj, name);
    return !v || json_alloc_add(msg, name, v);
}

er_rc message_inference_json_cjson(const inference *inf, const message_opts *o, util_buf *out)
{
    er_rc rc = ER_NOMEM;
    bool nomem = false;
    cJSON *result = parse_stored(inf->result_json ? inf->result_json : "{}", &nomem);
    cJSON *timing = parse_stored(inf->timing_json, &nomem);
    cJSON *info = parse_stored(inf->info_json, &nomem);
    cJSON *msg = cJSON_CreateObject();
    char *image_b64 = NULL, *text = NULL;
    if (!result || !msg || nomem) goto fail;

    static const struct {
        const char *from, *to;
    } kinds[] = {{"classification", "c"},
                 {"bounding_boxes", "box"},
                 {"visual_anomaly_grid", "grid"},
                 {"freeform", "freeform"}};
    const char *key = "c";
    cJSON *payload = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && !payload; i++) {
        payload = cJSON_DetachItemFromObjectCaseSensitive(result, kinds[i].from);
        if (payload) key = kinds[i].to;
    }
    if (!payload) payload = cJSON_CreateObject();
    if (!payload) goto fail;
    /* info, payload and timing belong to msg once handed to json_alloc_add (which frees them
     * on failure): each is set to NULL then */
    int count = result_count(payload);
    if (o->include_image && inf->image.data) {
        image_b64 = malloc(util_b64_encoded_len(inf->image.len) + 1);
        if (image_b64) util_b64_encode(inf->image.data, inf->image.len, image_b64);
    }
    bool ok = (!o->include_image || !inf->image.data || image_b64) &&
              cJSON_AddNumberToObject(msg, "time_ms", total_time_ms(timing));
    if (ok && info) {
        ok = json_alloc_add(msg, "info", info);
        info = NULL;
    }
    ok = ok && cJSON_AddNumberToObject(msg, "inference_count", count) &&
         cJSON_AddNumberToObject(msg, "total_inferences", (double)inf->seq) &&
         cJSON_AddStringToObject(msg, "id", inf->guid) &&
         cJSON_AddNumberToObject(msg, "ts", (double)inf->ts) &&
         (!image_b64 || cJSON_AddStringToObject(msg, "image", image_b64));
    if (ok)
        ok = json_alloc_add(msg, key, payload);
    else
        cJSON_Delete(payload);
    ok = ok && cJSON_AddStringToObject(msg, "s3_bucket", o->s3_bucket ? o->s3_bucket : "unset") &&
         cJSON_AddStringToObject(msg, "s3_prefix", "unset") &&
         cJSON_AddNumberToObject(msg, "seq", (double)inf->seq) &&
         cJSON_AddStringToObject(msg, "device", inf->device ? inf->device : "") &&
         /* the model's anomaly score as the result holds it (a grid's max is not one) */
         move_member(msg, result, "anomaly") &&
         (!o->image_omitted || cJSON_AddTrueToObject(msg, "image_omitted"));
    if (ok && o->full_fidelity) {
        ok = move_member(msg, result, "visual_anomaly_max") &&
             move_member(msg, result, "visual_anomaly_mean");
        if (ok && timing) {
            ok = json_alloc_add(msg, "timing", timing);
            timing = NULL;
        }
    }
    if (!ok) goto fail;

    text = cJSON_PrintUnformatted(msg);
    if (!text) goto fail;
    rc = util_buf_append(out, text, strlen(text));
fail:
    free(text);
    free(image_b64);
    cJSON_Delete(msg);
    cJSON_Delete(result);
    cJSON_Delete(timing);
    cJSON_Delete(info);
    return rc;
}

/* ---- the single pass ------------------------------------------------------------------------ */

#define FAST_DEPTH_MAX 64 /* deeper values go the cJSON way (its own limit is 1000) */

/* A walk over canonical JSON text: p moves; when out is set, the value's bytes are appended to
 * it, [from, p) still pending (numbers printed again flush it first). ok false: give up. */
typedef struct walk {
    const char *p;
    util_buf *out;
    const char *from;
    bool ok;
} walk;

static unsigned char decimal_point(void)
{
    const struct lconv *l = localeconv(); /* as cJSON's get_decimal_point */
    return (unsigned char)l->decimal_point[0];
}

/* cJSON's number from its text (parse_number): the chars with '.' as the locale's point. */
static double number_value(const char *s, size_t n)
{
    char tmp[64];
    unsigned char dp = decimal_point();
    if (n >= sizeof tmp) n = sizeof tmp - 1; /* callers keep n below 40 */
    for (size_t i = 0; i < n; i++)
        tmp[i] = s[i] == '.' ? (char)dp : s[i];
    tmp[n] = '\0';
    return strtod(tmp, NULL);
}

static void put(walk *w, const void *p, size_t n)
{
    if (w->ok && w->out && util_buf_append(w->out, p, n)) w->ok = false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A number token. Copied as it stands when its text is what cJSON prints for its value: a whole
 * number of at most 15 digits, or a fixed-point one of at most 15 significant digits, no
 * trailing zero and no more than three zeros after the point (%1.15g's fixed range); a decimal
 * of at most 15 significant digits survives the trip through a double (DBL_DIG). Any other is
 * printed again. */
static void walk_number(walk *w)
{
    const char *s = w->p, *q = s;
    if (*q == '-') q++;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (is_digit(*q))
            q++;
    } else {
        w->ok = false;
        return;
    }
    const char *int_end = q, *frac = NULL;
    if (*q == '.') {
        frac = ++q;
        if (!is_digit(*q)) {
            w->ok = false;
            return;
        }
        while (is_digit(*q))
            q++;
    }
    bool expo = false;
    if (*q == 'e' || *q == 'E') {
        expo = true;
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!is_digit(*q)) {
            w->ok = false;
            return;
        }
        while (is_digit(*q))
            q++;
    }
    size_t len = (size_t)(q - s);
    w->p = q;
    if (len > 40) { /* cJSON reads at most 63 chars of a number: leave such to it */
        w->ok = false;
        return;
    }
    const char *digits = s[0] == '-' ? s + 1 : s;
    bool zero_int = int_end - digits == 1 && digits[0] == '0';
    bool canonical = !expo;
    if (canonical && !frac) {
        /* whole: "0", or no leading zero and at most 15 digits; "-0" prints as "0" */
        canonical = zero_int ? s[0] != '-' : int_end - digits <= 15;
    } else if (canonical) {
        size_t nf = (size_t)(q - frac);
        if (frac[nf - 1] == '0') {
            canonical = false; /* %g drops trailing zeros */
        } else if (zero_int) {
            size_t lead = 0;
            while (lead < nf && frac[lead] == '0')
                lead++;
            canonical = lead <= 3 && nf - lead <= 15; /* below 1e-4 %g switches to e-form */
        } else {
            canonical = (size_t)(int_end - digits) + nf <= 15;
        }
    }
    if (canonical) return;
    char buf[JSON_PRINT_NUMBER_MAX];
    size_t n = json_print_number(number_value(s, len), buf); /* as cJSON prints it */
    if (w->out) {
        put(w, w->from, (size_t)(s - w->from));
        put(w, buf, n);
        w->from = q;
    }
}

/* A string token as cJSON prints it: bytes from 0x20 up raw except '"' and '\\', the escapes
 * \" \\ \b \f \n \r \t, and \u00XX (lowercase) for the other bytes below 0x20 but NUL. */
static void walk_string(walk *w)
{
    const unsigned char *q = (const unsigned char *)w->p + 1; /* past the quote */
    for (;;) {
        unsigned char c = *q;
        if (c == '"') break;
        if (c < 0x20) { /* a raw control byte (or the end): cJSON would escape it */
            w->ok = false;
            return;
        }
        if (c != '\\') {
            q++;
            continue;
        }
        c = q[1];
        if (c == '"' || c == '\\' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            q += 2;
            continue;
        }
        static const char hex[] = "0123456789abcdef";
        int v = -1;
        if (c == 'u' && q[2] == '0' && q[3] == '0' && (q[4] == '0' || q[4] == '1') && q[5] &&
            strchr(hex, q[5]))
            v = (q[4] - '0') * 16 + (int)(strchr(hex, q[5]) - hex);
        if (v <= 0 || v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') {
            w->ok = false;
            return;
        }
        q += 6;
    }
    w->p = (const char *)q + 1;
}

/* One value; *count (if set) gets the number of members or elements of an object or array. */
static void walk_value(walk *w, int depth, int *count)
{
    if (count) *count = 0;
    if (!w->ok) return;
    char c = *w->p;
    if (c == '"') {
        walk_string(w);
    } else if (c == '-' || is_digit(c)) {
        walk_number(w);
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (depth >= FAST_DEPTH_MAX) {
            w->ok = false;
            return;
        }
        w->p++;
        int n = 0;
        if (*w->p == close) {
            w->p++;
        } else {
            for (;;) {
                if (c == '{') {
                    if (*w->p != '"') {
                        w->ok = false;
                        return;
                    }
                    walk_string(w);
                    if (!w->ok || *w->p != ':') {
                        w->ok = false;
                        return;
                    }
                    w->p++;
                }
                walk_value(w, depth + 1, NULL);
                if (!w->ok) return;
                n++;
                if (*w->p == ',') {
                    w->p++;
                } else if (*w->p == close) {
                    w->p++;
                    break;
                } else {
                    w->ok = false;
                    return;
                }
            }
        }
        if (count) *count = n;
    } else if (!strncmp(w->p, "true", 4)) {
        w->p += 4;
    } else if (!strncmp(w->p, "false", 5)) {
        w->p += 5;
    } else if (!strncmp(w->p, "null", 4)) {
        w->p += 4;
    } else {
        w->ok = false;
    }
}

/* Appends the value at *text (which must be the whole of text) to out; false: give up. */
static bool copy_whole(const char *text, util_buf *out)
{
    walk w = {.p = text, .out = out, .from = text, .ok = true};
    walk_value(&w, 0, NULL);
    if (w.ok && *w.p) w.ok = false;
    put(&w, w.from, (size_t)(w.p - w.from));
    return w.ok;
}

/* Appends the span [s, s+n) of a value already walked once (so it is valid) to out. */
static bool copy_span(const char *s, util_buf *out, int *count)
{
    walk w = {.p = s, .out = out, .from = s, .ok = true};
    walk_value(&w, 0, count);
    put(&w, w.from, (size_t)(w.p - w.from));
    return w.ok;
}

typedef struct member {
    const char *key; /* the name looked for */
    const char *val; /* its first value in the object; NULL if absent */
    int count;       /* members or elements of that value when an object or array, else 0 */
} member;

/* Walks the object that is the whole of text and finds the first value of each of the names
 * (as cJSON_GetObjectItemCaseSensitive does). false: not an object or not canonical. */
static bool find_members(const char *text, member *m, size_t n_m)
{
    walk w = {.p = text, .ok = true};
    for (size_t i = 0; i < n_m; i++)
        m[i].val = NULL;
    if (*w.p++ != '{') return false;
    if (*w.p == '}') return w.p[1] == '\0';
    for (;;) {
        if (*w.p != '"') return false;
        const char *k = w.p + 1;
        walk_string(&w);
        if (!w.ok || *w.p != ':') return false;
        size_t klen = (size_t)(w.p - 1 - k);
        const char *v = ++w.p;
        int count = 0;
        walk_value(&w, 1, &count);
        if (!w.ok) return false;
        for (size_t i = 0; i < n_m; i++)
            if (!m[i].val && strlen(m[i].key) == klen && !memcmp(m[i].key, k, klen)) {
                m[i].val = v;
                m[i].count = count;
            }
        if (*w.p == ',') {
            w.p++;
        } else if (*w.p == '}') {
            return w.p[1] == '\0';
        } else {
            return false;
        }
    }
}

static bool put_str(util_buf *out, const char *s)
{
    return util_buf_append(out, s, strlen(s)) == ER_OK;
}

static bool put_number(util_buf *out, double d)
{
    char buf[JSON_PRINT_NUMBER_MAX];
    size_t n = json_print_number(d, buf);
    return util_buf_append(out, buf, n) == ER_OK;
}

/* The message in one pass; false (out as it was) when the cJSON way has to do it. */
static bool message_fast(const inference *inf, const message_opts *o, util_buf *out)
{
    if (o->full_fidelity) return false; /* export: rare, the cJSON way */
    const char *result = inf->result_json ? inf->result_json : "{}";
    member rm[] = {{"classification", NULL, 0},
                   {"bounding_boxes", NULL, 0},
                   {"visual_anomaly_grid", NULL, 0},
                   {"freeform", NULL, 0},
                   {"anomaly", NULL, 0}};
    static const char *const keys[] = {"\"c\":", "\"box\":", "\"grid\":", "\"freeform\":"};
    if (!find_members(result, rm, sizeof rm / sizeof rm[0])) return false;
    double time_ms = 0;
    if (inf->timing_json) {
        member tm[] = {{"dsp", NULL, 0}, {"classification", NULL, 0}, {"anomaly", NULL, 0}};
        if (!find_members(inf->timing_json, tm, sizeof tm / sizeof tm[0])) return false;
        for (size_t i = 0; i < sizeof tm / sizeof tm[0]; i++) {
            const char *v = tm[i].val;
            if (v && (*v == '-' || is_digit(*v))) {
                walk w = {.p = v, .ok = true};
                walk_number(&w);
                time_ms += number_value(v, (size_t)(w.p - v));
            }
        }
    }
    const member *pay = NULL;
    size_t k = 0;
    for (; k < 4 && !pay; k++)
        if (rm[k].val) pay = &rm[k];
    size_t len0 = out->len;
    char *b64 = NULL;
    bool ok = put_str(out, "{\"time_ms\":") && put_number(out, time_ms);
    if (ok && inf->info_json) ok = put_str(out, ",\"info\":") && copy_whole(inf->info_json, out);
    ok = ok && put_str(out, ",\"inference_count\":") && put_number(out, pay ? pay->count : 0) &&
         put_str(out, ",\"total_inferences\":") && put_number(out, (double)inf->seq) &&
         put_str(out, ",\"id\":") && json_string_append(out, inf->guid) == ER_OK &&
         put_str(out, ",\"ts\":") && put_number(out, (double)inf->ts);
    if (ok && o->include_image && inf->image.data) {
        ok = (b64 = malloc(util_b64_encoded_len(inf->image.len) + 1)) != NULL;
        if (ok) util_b64_encode(inf->image.data, inf->image.len, b64);
        ok = ok && put_str(out, ",\"image\":\"") && put_str(out, b64) && put_str(out, "\"");
    }
    ok = ok && put_str(out, ",") && put_str(out, pay ? keys[k - 1] : "\"c\":") &&
         (pay ? copy_span(pay->val, out, NULL) : put_str(out, "{}")) &&
         put_str(out, ",\"s3_bucket\":") &&
         json_string_append(out, o->s3_bucket ? o->s3_bucket : "unset") == ER_OK &&
         put_str(out, ",\"s3_prefix\":\"unset\",\"seq\":") && put_number(out, (double)inf->seq) &&
         put_str(out, ",\"device\":") &&
         json_string_append(out, inf->device ? inf->device : "") == ER_OK;
    if (ok && rm[4].val) ok = put_str(out, ",\"anomaly\":") && copy_span(rm[4].val, out, NULL);
    if (ok && o->image_omitted) ok = put_str(out, ",\"image_omitted\":true");
    ok = ok && put_str(out, "}");
    free(b64);
    if (ok) return true;
    out->len = len0;
    if (out->data) out->data[len0] = '\0';
    return false;
}

er_rc message_inference_json(const inference *inf, const message_opts *o, util_buf *out)
{
    if (message_fast(inf, o, out)) return ER_OK;
    return message_inference_json_cjson(inf, o, out);
}
