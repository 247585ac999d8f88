/* serial_parse_line.c - one complete line of firmware text classified (see serial_parse.h and
 * serial_parse_internal.h): block headers (`Predictions (...)`, `Timing:`), section headers of
 * the classic, newer and current (`#`-prefixed, v1.83+) SDK formats, result lines added to the
 * open block, the debug window's lines (`Begin output`, `Framebuffer:`, `End output`), noise.
 * Pure: works on the parser's state only. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "sources/serial_parse_internal.h"

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

/* The last c in [s, s + n); NULL if absent. */
static const char *last_of(const char *s, size_t n, char c)
{
    while (n--)
        if (s[n] == c) return s + n;
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

/* ---- line classification ----------------------------------------------------------------- */

/* The names a timing piece may have, and where its figure goes. */
static const struct {
    const char *name;
    enum sp_timing key;
} timing_names[] = {
    {"dsp", T_DSP},         {"classification", T_CLS},  {"inference", T_CLS},
    {"anomaly", T_ANOMALY}, {"postprocessing", T_POST},
};

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
        for (size_t i = 0; key < 0 && i < sizeof timing_names / sizeof timing_names[0]; i++)
            if (equals_ci(piece, name_len, timing_names[i].name)) key = (int)timing_names[i].key;
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
        {"#Classification predictions:", SEC_CLS},
        {"Classification predictions:", SEC_CLS},
        {"Predictions:", SEC_CLS},
        {"#Object detection results:", SEC_BOXES},
        {"#Object detection bounding boxes:", SEC_BOXES},
        {"Object detection bounding boxes:", SEC_BOXES},
        {"#Regression results:", SEC_REGRESSION},
        {"Regression predictions:", SEC_REGRESSION},
        {"#Visual anomaly grid results:", SEC_GRID},
        {"#Visual anomalies:", SEC_GRID},
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
    colon = last_of(s, n, ':');
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
    if (!(open = last_of(s, n - 1, '['))) return 0;
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
        const char *lp = last_of(label, label_len - 1, '('), *in;
        size_t in_len;
        double v;
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

/* Finds word in [s, s + n), ignoring case; NULL if absent. */
static const char *find_ci(const char *s, size_t n, const char *word)
{
    for (size_t i = 0; i < n; i++)
        if (starts_with_ci(s + i, n - i, word)) return s + i;
    return NULL;
}

/* "Visual anomaly values: Mean 0.1 Max 0.9" (also "Mean : 0.1 Max : 0.9") and the current
 * SDK's "Visual anomaly mean: 0.1, max: 0.9". */
static bool parse_vad_values(sp_block *b, const char *s, size_t n)
{
    const char *mean = find_ci(s, n, "mean"), *max = find_ci(s, n, "max");
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

/* "#Freeform output index=N" (colon optional): a new output array. 0 = not this line. */
static int try_freeform_header(serial_parser *p, const char *s, size_t n, er_rc *rc)
{
    sp_block *b = &p->b;
    const char *q;
    size_t rest;
    double idx;
    unsigned bit = 1u << SEC_FREEFORM;
    cJSON *arr;
    if (n && *s == '#') {
        s++;
        n--;
    }
    if (!starts_with_ci(s, n, "Freeform output")) return 0;
    q = find(s, n, "index=");
    if (!q) return 0;
    q += 6;
    rest = (size_t)(s + n - q);
    if (rest && q[rest - 1] == ':') rest--;
    if (!parse_num(q, rest, &idx) || idx < 0 || idx != floor(idx)) return 0;
    /* index 0 again: the next inference of a firmware that printed no Timing line */
    if (!b->open || (idx == 0 && b->seen_sections & bit && b->has_results)) {
        sp__block_end(p, p->emit, p->emit_arg);
        sp__block_open(p);
    }
    b->section = SEC_FREEFORM;
    b->seen_sections |= bit;
    b->has_results = true;
    if (!count_item(p)) return 1;
    if ((!b->freeform && !(b->freeform = cJSON_CreateArray())) || !(arr = cJSON_CreateArray())) {
        *rc = ER_NOMEM;
        return 1;
    }
    cJSON_AddItemToArray(b->freeform, arr);
    b->ff_cur = arr;
    return 1;
}

/* In a freeform section: numbers separated by commas, blanks and brackets, added to the current
 * output. 0 = not such a line (any other word in it). */
static int try_freeform_values(serial_parser *p, const char *s, size_t n, er_rc *rc)
{
    sp_block *b = &p->b;
    size_t i = 0, used;
    double v;
    if (b->section != SEC_FREEFORM || !b->ff_cur) return 0;
    /* check the whole line first, so a bad line adds nothing */
    while (i < n) {
        if (strchr(" \t,[]", s[i])) {
            i++;
            continue;
        }
        if (!lead_num(s + i, n - i, &v, &used)) return 0;
        i += used;
    }
    for (i = 0; i < n;) {
        if (strchr(" \t,[]", s[i])) {
            i++;
            continue;
        }
        lead_num(s + i, n - i, &v, &used);
        i += used;
        if (!count_item(p)) continue;
        cJSON *num = cJSON_CreateNumber(v);
        if (!num) {
            *rc = ER_NOMEM;
            return 1;
        }
        cJSON_AddItemToArray(b->ff_cur, num);
    }
    return 1;
}

/* "#Regression prediction: 0.5" (the current SDK: header and value on one line): label
 * "value". 0 = not this line (e.g. "Regression predictions:", a section header). */
static int try_regression_line(serial_parser *p, const char *s, size_t n, er_rc *rc)
{
    sp_block *b = &p->b;
    const char *colon;
    double v;
    if (n && *s == '#') {
        s++;
        n--;
    }
    if (!starts_with_ci(s, n, "Regression prediction:")) return 0;
    colon = s + strlen("Regression prediction");
    if (!parse_num(colon + 1, (size_t)(s + n - colon - 1), &v)) return 0;
    if (!b->open) sp__block_open(p);
    b->has_results = true;
    if (b->cls && cJSON_GetObjectItemCaseSensitive(b->cls, "value")) return 1;
    if (!count_item(p)) return 1;
    if ((!b->cls && !(b->cls = cJSON_CreateObject())) ||
        !cJSON_AddNumberToObject(b->cls, "value", v))
        *rc = ER_NOMEM;
    return 1;
}

/* The debug window's own lines; 0 = none of them. Begin and End drop a snapshot that found no
 * result to go with. */
static int try_debug_line(serial_parser *p, const char *s, size_t n)
{
    if (starts_with_ci(s, n, SP_FRAMEBUFFER_PREFIX)) {
        sp__block_end(p, p->emit, p->emit_arg);
        sp__framebuffer(p, s, n);
        return 1;
    }
    if (equals_ci(s, n, "Begin output") || equals_ci(s, n, "End output")) {
        sp__block_end(p, p->emit, p->emit_arg);
        sp__image_clear(p);
        return 1;
    }
    return 0;
}

/* A line no block claims: may still carry the model resolution. */
void sp__noise_line(serial_parser *p, const char *s, size_t n, serial_emit_fn emit, void *arg)
{
    const char *r = find(s, n, "Image resolution:");
    sp__block_end(p, emit, arg);
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

void sp__handle_line(serial_parser *p, const char *s, size_t n, serial_emit_fn emit, void *arg)
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
            sp__noise_line(p, "", 0, emit, arg);
            return;
        }
    }
    trim(&s, &n);
    if (n == 0) return;
    p->emit = emit;
    p->emit_arg = arg;
    if (try_debug_line(p, s, n)) return;

    /* block headers; found anywhere so garbage left on the line by a reset does not hide one */
    if ((hdr = find(s, n, "Predictions (")) || (hdr = find(s, n, "Timing:"))) {
        bool classic = hdr[0] == 'P';
        const char *t = hdr + (classic ? 13 : 7);
        size_t tn = (size_t)(s + n - t);
        const char *close = classic ? find(t, tn, ")") : NULL;
        sp__block_end(p, emit, arg);
        sp__block_open(p);
        parse_timing(b, t, close ? (size_t)(close - t) : tn);
        return;
    }
    if ((sec = section_of(s, n)) >= 0) {
        unsigned bit = 1u << sec;
        /* a section printed again means the next inference of a header-less firmware */
        if (!b->open || (b->seen_sections & bit && b->has_results)) {
            sp__block_end(p, emit, arg);
            sp__block_open(p);
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
    if (try_freeform_header(p, s, n, &rc) || try_regression_line(p, s, n, &rc)) goto done;
    if (!b->open) {
        sp__noise_line(p, s, n, emit, arg);
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
    if (starts_with_ci(s, n, "Visual anomaly values") ||
        starts_with_ci(s, n, "Visual anomaly mean")) {
        if (!parse_vad_values(b, s, n)) {
            sp__noise_line(p, s, n, emit, arg);
            return;
        }
        b->has_results = true;
        if (!b->grid && !(b->grid = cJSON_CreateArray())) rc = ER_NOMEM;
        goto done;
    }
    if (try_freeform_values(p, s, n, &rc) || try_box_line(p, s, n, &rc) ||
        try_class_line(p, s, n, &rc))
        goto done;
    sp__noise_line(p, s, n, emit, arg);
    return;
done:
    if (rc) {
        /* a block missing a line would be a wrong inference: drop it whole */
        p->st.dropped++;
        p->nomem = true;
        sp__block_reset(b);
    }
}
