/* serial_parse.c - see serial_parse.h. Bytes are collected into one fixed line buffer; each
 * complete line is classified (block header, section header, result line, noise) and result
 * lines accumulate into the open block as cJSON pieces, which become the canonical result (in
 * normalize's key order) when the block ends.
 *
 * Ownership: the parser owns its line buffer, names and the open block's cJSON pieces; each
 * emitted inference is handed to the emit callback and owned by it from then on. */
#include "sources/serial_parse.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define SP_LABEL_MAX 128   /* bytes in one label, as normalize */
#define SP_ITEMS_MAX 10000 /* labels + boxes + cells in one inference, as normalize */
#define SP_MODEL_PX_MAX 65535

enum sp_section { SEC_NONE, SEC_CLS, SEC_REGRESSION, SEC_BOXES, SEC_GRID, SEC_TRACKING };
enum sp_timing { T_DSP, T_CLS, T_ANOMALY, T_COUNT };

static const char *const timing_keys[T_COUNT] = {"dsp", "classification", "anomaly"};

/* The block being collected. The cJSON pieces are owned here until the block ends. */
typedef struct sp_block {
    bool open;
    bool has_results; /* a result line (or a box/grid section header) was seen */
    int64_t ts;
    enum sp_section section;
    unsigned seen_sections; /* bit per section header seen, to spot a repeated one */
    double timing[T_COUNT];
    bool has_timing[T_COUNT];
    cJSON *cls;   /* object label: score, or NULL */
    cJSON *boxes; /* array, or NULL; empty after "No objects found" */
    cJSON *grid;  /* array, or NULL */
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
    bool nomem;      /* a block was lost to ENOMEM during this call */
    bool overlong;   /* the current line passed cap: skipping to its newline */
    size_t cap, len; /* line buffer capacity and fill */
    char line[];     /* cap + 1 bytes (room for the NUL) */
};

/* ---- small text helpers ------------------------------------------------------------------ */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Trims [*s, *s + *n) in place on both ends. */
static void trim(const char **s, size_t *n)
{
    while (*n && is_blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_blank((*s)[*n - 1]))
        (*n)--;
}

static bool starts_with_ci(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    if (n < k) return false;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)s[i]) != tolower((unsigned char)prefix[i])) return false;
    return true;
}

static bool equals_ci(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && starts_with_ci(s, n, word);
}

/* Finds needle in [s, s + n); NULL if absent. The line holds no NUL but is not terminated
 * at n when called on a slice, so strstr cannot be used. */
static const char *find(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0) return s + i;
    return NULL;
}

/* Parses the whole of [s, s + n) (trimmed) as a finite number. */
static bool parse_num(const char *s, size_t n, double *out)
{
    char buf[64];
    trim(&s, &n);
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (isspace((unsigned char)buf[0])) return false;
    return util_parse_double(buf, out) == ER_OK;
}

/* A leading number of [s, s + n); *used gets its length. */
static bool lead_num(const char *s, size_t n, double *out, size_t *used)
{
    char buf[64];
    char *end = NULL;
    size_t k = n < sizeof buf - 1 ? n : sizeof buf - 1;
    memcpy(buf, s, k);
    buf[k] = '\0';
    if (k == 0 ||
        !(isdigit((unsigned char)buf[0]) || buf[0] == '-' || buf[0] == '+' || buf[0] == '.'))
        return false;
    double v = strtod(buf, &end);
    if (end == buf || !isfinite(v)) return false;
    *out = v;
    *used = (size_t)(end - buf);
    return true;
}

/* Labels are 1..SP_LABEL_MAX bytes of valid UTF-8 (control bytes were rejected per line), so
 * the stored JSON stays valid for every reader. */
static bool label_ok(const char *s, size_t n)
{
    return n > 0 && n <= SP_LABEL_MAX && util_utf8_valid(s, n);
}

/* ---- block life cycle -------------------------------------------------------------------- */

static void block_reset(sp_block *b)
{
    cJSON_Delete(b->cls);
    cJSON_Delete(b->boxes);
    cJSON_Delete(b->grid);
    memset(b, 0, sizeof *b);
}

static void block_open(serial_parser *p)
{
    block_reset(&p->b);
    p->b.open = true;
    p->b.ts = p->now_ms ? p->now_ms() : util_now_ms();
}

/* Adds each label of an array of boxes/cells to the label index. */
static er_rc index_boxes(inference *inf, const cJSON *arr)
{
    for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "label");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
        if (inference_add_label(inf, l->valuestring, v->valuedouble)) return ER_NOMEM;
    }
    return ER_OK;
}

static er_rc build_timing(const sp_block *b, inference *inf)
{
    er_rc rc = ER_OK;
    cJSON *t = NULL;
    if (!b->has_timing[T_DSP] && !b->has_timing[T_CLS] && !b->has_timing[T_ANOMALY]) goto fail;
    t = cJSON_CreateObject();
    if (!t) {
        rc = ER_NOMEM;
        goto fail;
    }
    for (int k = 0; k < T_COUNT; k++) {
        if (b->has_timing[k] && !cJSON_AddNumberToObject(t, timing_keys[k], b->timing[k])) {
            rc = ER_NOMEM;
            goto fail;
        }
    }
    inf->timing_json = cJSON_PrintUnformatted(t);
    if (!inf->timing_json) rc = ER_NOMEM;
fail:
    cJSON_Delete(t);
    return rc;
}

/* The block's pieces to a canonical inference: result keys in normalize's order, kind and
 * anomaly by normalize's rules. Takes the cJSON pieces out of the block. */
static er_rc build_inference(serial_parser *p, inference **out)
{
    er_rc rc = ER_OK;
    sp_block *b = &p->b;
    cJSON *res = cJSON_CreateObject();
    inference *inf = inference_create();
    bool boxes_found = b->boxes && cJSON_GetArraySize(b->boxes) > 0;
    if (!res || !inf) {
        rc = ER_NOMEM;
        goto fail;
    }
    if ((rc = util_uuid4(inf->guid))) goto fail;
    inf->ts = b->ts;
    inf->model_width = p->model_w;
    inf->model_height = p->model_h;
    if ((rc = inference_set_str(&inf->device, p->device)) ||
        (rc = inference_set_str(&inf->source, p->source)))
        goto fail;
    if ((rc = index_boxes(inf, b->boxes)) || (rc = index_boxes(inf, b->grid))) goto fail;
    for (const cJSON *it = b->cls ? b->cls->child : NULL; it; it = it->next)
        if ((rc = inference_add_label(inf, it->string, it->valuedouble))) goto fail;

    if (b->cls) {
        cJSON_AddItemToObject(res, "classification", b->cls);
        b->cls = NULL;
    }
    /* a visual anomaly model's empty box list is dropped next to its grid, as normalize does */
    if (b->boxes && (boxes_found || !b->grid)) {
        cJSON_AddItemToObject(res, "bounding_boxes", b->boxes);
        b->boxes = NULL;
    }
    if (b->grid) {
        cJSON_AddItemToObject(res, "visual_anomaly_grid", b->grid);
        b->grid = NULL;
        if ((b->has_vmax && !cJSON_AddNumberToObject(res, "visual_anomaly_max", b->vmax)) ||
            (b->has_vmean && !cJSON_AddNumberToObject(res, "visual_anomaly_mean", b->vmean))) {
            rc = ER_NOMEM;
            goto fail;
        }
    }
    if (b->has_anomaly && !cJSON_AddNumberToObject(res, "anomaly", b->anomaly)) {
        rc = ER_NOMEM;
        goto fail;
    }

    if (cJSON_GetObjectItemCaseSensitive(res, "classification"))
        inf->kind = INFERENCE_CLASSIFICATION;
    else if (cJSON_GetObjectItemCaseSensitive(res, "visual_anomaly_grid"))
        inf->kind = INFERENCE_VISUAL_ANOMALY;
    else if (boxes_found)
        inf->kind = INFERENCE_OBJECT_DETECTION;
    else if (b->has_anomaly)
        inf->kind = INFERENCE_ANOMALY;
    else
        inf->kind = INFERENCE_EMPTY;
    if (b->has_anomaly) {
        inf->has_anomaly = 1;
        inf->anomaly = b->anomaly;
    } else if (inf->kind == INFERENCE_VISUAL_ANOMALY && b->has_vmax) {
        inf->has_anomaly = 1;
        inf->anomaly = b->vmax;
    }
    inf->result_json = cJSON_PrintUnformatted(res);
    if (!inf->result_json) {
        rc = ER_NOMEM;
        goto fail;
    }
    if ((rc = build_timing(b, inf))) goto fail;
    *out = inf;
    inf = NULL;
fail:
    cJSON_Delete(res);
    inference_destroy(inf);
    return rc;
}

/* Ends the open block: emits it if it holds a result, else counts it as empty. */
static void block_end(serial_parser *p, serial_emit_fn emit, void *arg)
{
    inference *inf = NULL;
    if (!p->b.open) return;
    if (!p->b.has_results) {
        p->st.empty_blocks++;
    } else if (build_inference(p, &inf) == ER_OK) {
        p->st.inferences++;
        emit(arg, inf);
    } else {
        p->st.dropped++;
        p->nomem = true;
    }
    block_reset(&p->b);
}

/* ---- line classification ----------------------------------------------------------------- */

/* Timing pieces "DSP: 17 ms." / "inference 12 ms" / "DSP 780 us" / "Anomaly: 0ms." separated by
 * commas; unknown or malformed pieces are skipped. Values in us become fractional ms. */
static void parse_timing(sp_block *b, const char *s, size_t n)
{
    while (n) {
        const char *comma = memchr(s, ',', n);
        size_t k = comma ? (size_t)(comma - s) : n, name_len = 0, used = 0;
        const char *piece = s, *num;
        size_t rest;
        double v;
        int key = -1;
        s += k + (comma ? 1 : 0);
        n -= k + (comma ? 1 : 0);
        trim(&piece, &k);
        while (name_len < k && isalpha((unsigned char)piece[name_len]))
            name_len++;
        if (equals_ci(piece, name_len, "dsp"))
            key = T_DSP;
        else if (equals_ci(piece, name_len, "classification") ||
                 equals_ci(piece, name_len, "inference"))
            key = T_CLS;
        else if (equals_ci(piece, name_len, "anomaly"))
            key = T_ANOMALY;
        if (key < 0) continue;
        num = piece + name_len;
        rest = k - name_len;
        if (rest && *num == ':') {
            num++;
            rest--;
        }
        trim(&num, &rest);
        if (!lead_num(num, rest, &v, &used)) continue;
        num += used;
        rest -= used;
        trim(&num, &rest);
        if (starts_with_ci(num, rest, "us") || starts_with_ci(num, rest, "\xc2\xb5s"))
            v /= 1000.0;
        else if (rest && !starts_with_ci(num, rest, "ms"))
            continue; /* an unknown unit: better no figure than a wrong one */
        b->timing[key] = v;
        b->has_timing[key] = true;
    }
}

/* Section headers, matched on the whole trimmed line. */
static int section_of(const char *s, size_t n)
{
    static const struct {
        const char *text;
        enum sp_section sec;
    } heads[] = {
        {"#Classification results:", SEC_CLS},
        {"Classification predictions:", SEC_CLS},
        {"Predictions:", SEC_CLS},
        {"#Object detection results:", SEC_BOXES},
        {"Object detection bounding boxes:", SEC_BOXES},
        {"#Regression results:", SEC_REGRESSION},
        {"Regression predictions:", SEC_REGRESSION},
        {"#Visual anomaly grid results:", SEC_GRID},
        {"Visual anomalies:", SEC_GRID},
        {"#Object tracking results:", SEC_TRACKING},
        {"Object tracking results:", SEC_TRACKING},
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
        if (equals_ci(s, n, heads[i].text)) return (int)heads[i].sec;
    return -1;
}

static bool count_item(serial_parser *p)
{
    if (p->b.n_items >= SP_ITEMS_MAX) {
        p->st.dropped++;
        return false;
    }
    p->b.n_items++;
    return true;
}

/* "label: 0.99" (or a bare number in a regression section). 0 = not this shape. */
static int try_class_line(serial_parser *p, const char *s, size_t n, er_rc *rc)
{
    sp_block *b = &p->b;
    const char *colon = NULL, *label = "value";
    size_t label_len = 5;
    double v;
    char key[SP_LABEL_MAX + 1];
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (colon) {
        label = s;
        label_len = (size_t)(colon - s);
        trim(&label, &label_len);
        if (!parse_num(colon + 1, n - (size_t)(colon + 1 - s), &v)) return 0;
    } else if (b->section != SEC_REGRESSION || !parse_num(s, n, &v)) {
        return 0;
    }
    if (!label_ok(label, label_len)) return 0;
    b->has_results = true;
    memcpy(key, label, label_len);
    key[label_len] = '\0';
    if (!b->cls && !(b->cls = cJSON_CreateObject())) {
        *rc = ER_NOMEM;
        return 1;
    }
    if (cJSON_GetObjectItemCaseSensitive(b->cls, key)) return 1; /* one score per label */
    if (!count_item(p)) return 1;
    if (!cJSON_AddNumberToObject(b->cls, key, v)) *rc = ER_NOMEM;
    return 1;
}

/* "label (0.91) [ x: 24, y: 16, width: 40, height: 48 ]", tracking "label (ID 3) [..]" or
 * "label (ID 3) (0.91) [..]". 0 = not this shape. */
static int try_box_line(serial_parser *p, const char *s, size_t n, er_rc *rc)
{
    static const char *const coords[] = {"x", "y", "width", "height"};
    sp_block *b = &p->b;
    const char *open = NULL, *body, *label = s;
    size_t body_len, label_len;
    double c[4], value = 1.0;
    bool have_c[4] = {false, false, false, false}, have_value = false;
    char key[SP_LABEL_MAX + 1];
    cJSON *box = NULL, **arr;
    if (n < 2 || s[n - 1] != ']') return 0;
    for (size_t i = n - 1; i > 0; i--)
        if (s[i - 1] == '[') {
            open = s + i - 1;
            break;
        }
    if (!open) return 0;
    /* coordinates: "key: number" pieces between the brackets */
    body = open + 1;
    body_len = (size_t)(s + n - 1 - body);
    while (body_len) {
        const char *comma = memchr(body, ',', body_len), *piece = body, *colon;
        size_t k = comma ? (size_t)(comma - body) : body_len;
        body += k + (comma ? 1 : 0);
        body_len -= k + (comma ? 1 : 0);
        trim(&piece, &k);
        colon = memchr(piece, ':', k);
        if (!colon) return 0;
        for (int j = 0; j < 4; j++) {
            size_t name_len = (size_t)(colon - piece);
            const char *name = piece;
            trim(&name, &name_len);
            if (equals_ci(name, name_len, coords[j])) {
                if (!parse_num(colon + 1, k - (size_t)(colon + 1 - piece), &c[j])) return 0;
                have_c[j] = true;
            }
        }
    }
    if (!have_c[0] || !have_c[1] || !have_c[2] || !have_c[3]) return 0;
    /* label and the parenthesised groups before the bracket, peeled from the right */
    label_len = (size_t)(open - s);
    trim(&label, &label_len);
    while (label_len && label[label_len - 1] == ')') {
        const char *lp = NULL, *in;
        size_t in_len;
        double v;
        for (size_t i = label_len - 1; i > 0; i--)
            if (label[i - 1] == '(') {
                lp = label + i - 1;
                break;
            }
        if (!lp) return 0;
        in = lp + 1;
        in_len = (size_t)(label + label_len - 1 - in);
        trim(&in, &in_len);
        if (starts_with_ci(in, in_len, "id")) {
            /* a tracking id: not part of the canonical box */
        } else if (!have_value && parse_num(in, in_len, &v)) {
            value = v;
            have_value = true;
        } else {
            return 0;
        }
        label_len = (size_t)(lp - label);
        trim(&label, &label_len);
    }
    if (!have_value && b->section != SEC_TRACKING) return 0;
    if (!label_ok(label, label_len)) return 0;
    b->has_results = true;
    if (!count_item(p)) return 1;
    memcpy(key, label, label_len);
    key[label_len] = '\0';
    arr = b->section == SEC_GRID ? &b->grid : &b->boxes;
    if (!*arr && !(*arr = cJSON_CreateArray())) goto nomem;
    box = cJSON_CreateObject();
    if (!box || !cJSON_AddStringToObject(box, "label", key) ||
        !cJSON_AddNumberToObject(box, "value", value))
        goto nomem;
    for (int j = 0; j < 4; j++)
        if (!cJSON_AddNumberToObject(box, coords[j], c[j])) goto nomem;
    cJSON_AddItemToArray(*arr, box);
    return 1;
nomem:
    cJSON_Delete(box);
    *rc = ER_NOMEM;
    return 1;
}

/* "Visual anomaly values: Mean 0.1 Max 0.9" (also "Mean : 0.1 Max : 0.9"). */
static bool parse_vad_values(sp_block *b, const char *s, size_t n)
{
    const char *mean = find(s, n, "Mean"), *max = find(s, n, "Max");
    double vmean = 0, vmax = 0;
    size_t used;
    if (!mean || !max) return false;
    for (int k = 0; k < 2; k++) {
        const char *q = (k ? max : mean) + (k ? 3 : 4);
        size_t rest = (size_t)(s + n - q);
        trim(&q, &rest);
        if (rest && *q == ':') {
            q++;
            rest--;
        }
        trim(&q, &rest);
        if (!lead_num(q, rest, k ? &vmax : &vmean, &used)) return false;
    }
    b->vmean = vmean;
    b->vmax = vmax;
    b->has_vmean = b->has_vmax = true;
    return true;
}

/* "Anomaly prediction: x" / "anomaly score: x" (colon optional). */
static bool parse_anomaly(sp_block *b, const char *s, size_t n, size_t skip)
{
    double v;
    s += skip;
    n -= skip;
    trim(&s, &n);
    if (n && *s == ':') {
        s++;
        n--;
    }
    if (!parse_num(s, n, &v)) return false;
    b->anomaly = v;
    b->has_anomaly = true;
    b->has_results = true;
    return true;
}

/* A line no block claims: may still carry the model resolution. */
static void noise_line(serial_parser *p, const char *s, size_t n, serial_emit_fn emit, void *arg)
{
    const char *r = find(s, n, "Image resolution:");
    block_end(p, emit, arg);
    p->st.noise_lines++;
    if (r) {
        const char *q = r + 17, *x;
        size_t rest = (size_t)(s + n - q), used = 0;
        double w, h;
        trim(&q, &rest);
        if (lead_num(q, rest, &w, &used) && (x = q + used) < s + n && (*x == 'x' || *x == 'X') &&
            lead_num(x + 1, (size_t)(s + n - x - 1), &h, &used) && w >= 1 && h >= 1 &&
            w <= SP_MODEL_PX_MAX && h <= SP_MODEL_PX_MAX && w == floor(w) && h == floor(h)) {
            p->model_w = (int)w;
            p->model_h = (int)h;
        }
    }
}

static void handle_line(serial_parser *p, const char *s, size_t n, serial_emit_fn emit, void *arg)
{
    sp_block *b = &p->b;
    const char *hdr;
    int sec;
    er_rc rc = ER_OK;
    p->st.lines++;
    /* control bytes other than tab mean line noise or a baud-rate mismatch */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
            noise_line(p, "", 0, emit, arg);
            return;
        }
    }
    trim(&s, &n);
    if (n == 0) return;

    /* block headers; found anywhere so garbage left on the line by a reset does not hide one */
    if ((hdr = find(s, n, "Predictions (")) || (hdr = find(s, n, "Timing:"))) {
        bool classic = hdr[0] == 'P';
        const char *t = hdr + (classic ? 13 : 7);
        size_t tn = (size_t)(s + n - t);
        const char *close = classic ? find(t, tn, ")") : NULL;
        block_end(p, emit, arg);
        block_open(p);
        parse_timing(b, t, close ? (size_t)(close - t) : tn);
        return;
    }
    if ((sec = section_of(s, n)) >= 0) {
        unsigned bit = 1u << sec;
        /* a section printed again means the next inference of a header-less firmware */
        if (!b->open || (b->seen_sections & bit && b->has_results)) {
            block_end(p, emit, arg);
            block_open(p);
        }
        b->section = (enum sp_section)sec;
        b->seen_sections |= bit;
        /* a box section with no box lines after it is an empty result ("no objects") */
        if (sec == SEC_BOXES || sec == SEC_TRACKING || sec == SEC_GRID) {
            cJSON **arr = sec == SEC_GRID ? &b->grid : &b->boxes;
            b->has_results = true;
            if (!*arr && !(*arr = cJSON_CreateArray())) rc = ER_NOMEM;
        }
        goto done;
    }
    if (!b->open) {
        noise_line(p, s, n, emit, arg);
        return;
    }
    if (equals_ci(s, n, "No objects found")) {
        b->has_results = true;
        if (!b->boxes && !(b->boxes = cJSON_CreateArray())) rc = ER_NOMEM;
        goto done;
    }
    if (starts_with_ci(s, n, "Anomaly prediction") &&
        parse_anomaly(b, s, n, strlen("Anomaly prediction")))
        goto done;
    if (starts_with_ci(s, n, "Anomaly score") && parse_anomaly(b, s, n, strlen("Anomaly score")))
        goto done;
    if (starts_with_ci(s, n, "Visual anomaly values")) {
        if (!parse_vad_values(b, s, n)) {
            noise_line(p, s, n, emit, arg);
            return;
        }
        b->has_results = true;
        if (!b->grid && !(b->grid = cJSON_CreateArray())) rc = ER_NOMEM;
        goto done;
    }
    if (try_box_line(p, s, n, &rc) || try_class_line(p, s, n, &rc)) goto done;
    noise_line(p, s, n, emit, arg);
    return;
done:
    if (rc) {
        /* a block missing a line would be a wrong inference: drop it whole */
        p->st.dropped++;
        p->nomem = true;
        block_reset(b);
    }
}

/* ---- public API -------------------------------------------------------------------------- */

er_rc serial_parser_create(const serial_parser_opts *o, serial_parser **out, er_err *err)
{
    er_rc rc = ER_OK;
    serial_parser *p = NULL;
    size_t cap = o->max_line ? o->max_line : SERIAL_PARSE_LINE_DEFAULT;
    *out = NULL;
    if (cap < SERIAL_PARSE_LINE_MIN || cap > SERIAL_PARSE_LINE_MAX) {
        rc = er_fail(err, ER_CONFIG, "serial max line must be %d..%d bytes", SERIAL_PARSE_LINE_MIN,
                     SERIAL_PARSE_LINE_MAX);
        goto fail;
    }
    p = calloc(1, sizeof *p + cap + 1);
    if (!p || inference_set_str(&p->device, o->device) ||
        inference_set_str(&p->source, o->source)) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    p->cap = cap;
    p->now_ms = o->now_ms;
    *out = p;
    p = NULL;
fail:
    serial_parser_destroy(p);
    return rc;
}

void serial_parser_destroy(serial_parser *p)
{
    if (!p) return;
    block_reset(&p->b);
    free(p->device);
    free(p->source);
    free(p);
}

er_rc serial_parser_feed(serial_parser *p, const uint8_t *data, size_t len, serial_emit_fn emit,
                         void *arg)
{
    size_t i = 0;
    if (!p || !emit || (!data && len)) return ER_INVALID;
    p->nomem = false;
    p->st.bytes += len;
    while (i < len) {
        const uint8_t *nl = memchr(data + i, '\n', len - i);
        size_t k = nl ? (size_t)(nl - (data + i)) : len - i;
        /* bytes of the current line in this chunk: buffered only while they fit */
        if (!p->overlong) {
            if (k > p->cap - p->len) {
                p->overlong = true;
                p->len = 0;
            } else {
                memcpy(p->line + p->len, data + i, k);
                p->len += k;
            }
        }
        i += k;
        if (!nl) break;
        i++; /* the newline */
        if (p->overlong) {
            /* an over-long line is no result line: it ends the open block like any noise */
            p->st.lines++;
            p->st.long_lines++;
            noise_line(p, "", 0, emit, arg);
            p->st.noise_lines--; /* counted as long, not as noise */
            p->overlong = false;
        } else {
            p->line[p->len] = '\0';
            handle_line(p, p->line, p->len, emit, arg);
        }
        p->len = 0;
    }
    return p->nomem ? ER_NOMEM : ER_OK;
}

er_rc serial_parser_flush(serial_parser *p, serial_emit_fn emit, void *arg)
{
    if (!p || !emit) return ER_INVALID;
    p->nomem = false;
    block_end(p, emit, arg);
    return p->nomem ? ER_NOMEM : ER_OK;
}

er_rc serial_parser_finish(serial_parser *p, serial_emit_fn emit, void *arg)
{
    er_rc rc = ER_OK, rc2;
    if (!p || !emit) return ER_INVALID;
    if (p->len || p->overlong) {
        /* the partial last line, as if its newline had arrived */
        rc = serial_parser_feed(p, (const uint8_t *)"\n", 1, emit, arg);
        p->st.bytes--;
    }
    rc2 = serial_parser_flush(p, emit, arg);
    p->len = 0;
    p->overlong = false;
    return rc ? rc : rc2;
}

void serial_parser_counters_get(const serial_parser *p, serial_parser_counters *out)
{
    *out = p->st;
}
