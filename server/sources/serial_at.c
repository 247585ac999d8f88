/* serial_at.c - see serial_at.h. Device bytes go through two small matchers at once: the prompt
 * ("> " at the start of a line) and a bounded line buffer whose complete lines are the replies
 * (configuration lines, refusals, the first output of a started impulse). Every wait has a
 * deadline that serial_at_tick checks; output waits in a small queue and leaves in paced pieces.
 *
 * Ownership: the machine owns everything in it; text handed to the event callback is borrowed
 * for the call. */
#include "sources/serial_at.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_LINE_MAX 256
#define AT_OUT_MAX 64
#define AT_SECTION_MAX 32
#define AT_NONE INT64_MAX
/* A device back at its prompt this soon after starting did not really start: no restart loop. */
#define AT_LEFT_MIN_MS 10000

static const char CMD_STOP[] = "b\r";
static const char CMD_CONFIG[] = "AT+CONFIG?\r";
static const char CMD_RUN[] = "AT+RUNIMPULSE\r";

struct serial_at {
    serial_at_opts o;
    serial_at_state st;
    serial_at_config cfg;
    int tries;          /* handshake writes in this round */
    int64_t deadline;   /* the current wait's end; AT_NONE when not waiting */
    int64_t started_at; /* when RUNNING began */
    const char *cmd;    /* the start command in flight (static) */
    bool refused;       /* the device refused cmd */
    uint8_t out[AT_OUT_MAX];
    size_t out_len;
    int64_t next_write; /* the next piece may go at this time */
    int pm;             /* prompt matcher: 0 mid-line, 1 line start, 2 '>' at a line start */
    bool prompt_seen;   /* a prompt with nothing after it yet, since prompt_at */
    int64_t prompt_at;
    char line[AT_LINE_MAX + 1];
    size_t line_len;
    char section[AT_SECTION_MAX];
};

/* The device's refusals, matched at the start of a reply line. */
static const char *const refusals[] = {
    "Not a valid AT command",
    "Command not found!",
    "No handler for command!",
    "Error no continuous classification available",
};

static const char *const sensor_names[] = {
    [1] = "microphone", [2] = "accelerometer", [3] = "camera",
    [4] = "9-dof",      [5] = "environmental", [6] = "fusion",
};

/* Where each AT+CONFIG? key goes: its section ("" = before any section header too), its key
 * (lower case), and the field. */
static const struct {
    const char *section;
    const char *key;
    size_t off;
} config_keys[] = {
    {"device info", "id", offsetof(serial_at_config, id)},
    {"device info", "type", offsetof(serial_at_config, type)},
    {"device info", "at version", offsetof(serial_at_config, at_version)},
    {"device info", "data transfer baudrate", offsetof(serial_at_config, baudrate)},
    {"inference", "model type", offsetof(serial_at_config, model_type)},
    {"snapshot", "resolutions", offsetof(serial_at_config, resolutions)},
};

static const char *const state_names[] = {
    [SERIAL_AT_IDLE] = "idle",
    [SERIAL_AT_HANDSHAKE] = "handshake",
    [SERIAL_AT_CONFIG] = "config",
    [SERIAL_AT_STARTING] = "starting",
    [SERIAL_AT_RUNNING] = "running",
    [SERIAL_AT_REFUSED] = "refused",
    [SERIAL_AT_PRINT_ONLY] = "print-only",
    [SERIAL_AT_STOPPING] = "stopping",
    [SERIAL_AT_STOPPED] = "stopped",
};

/* ---- helpers ---- */

static void emit(serial_at *a, serial_at_event ev, const char *text)
{
    if (a->o.event) a->o.event(a->o.arg, ev, text ? text : "");
}

static void queue(serial_at *a, const char *cmd)
{
    size_t n = strlen(cmd);
    if (n > sizeof a->out - a->out_len) return; /* cannot happen: commands are short */
    memcpy(a->out + a->out_len, cmd, n);
    a->out_len += n;
}

/* Trims blanks on both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* A value kept as printable ASCII (so it is valid JSON text), truncated to the field. */
static void keep(char *dst, const char *s, size_t n)
{
    size_t k = n < SERIAL_AT_VALUE_MAX - 1 ? n : SERIAL_AT_VALUE_MAX - 1;
    for (size_t i = 0; i < k; i++)
        dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    dst[k] = '\0';
}

/* "1.8.0" -> 1 and 8; false when not a version. */
static bool version(const char *v, long *major, long *minor)
{
    char *end = NULL;
    *major = strtol(v, &end, 10);
    if (end == v || *end != '.') return false;
    v = end + 1;
    *minor = strtol(v, &end, 10);
    return end != v;
}

/* ---- steps ---- */

static void handshake(serial_at *a, int64_t now)
{
    a->st = SERIAL_AT_HANDSHAKE;
    a->tries++;
    queue(a, CMD_STOP);
    a->deadline = now + a->o.handshake_ms;
}

static void ask_config(serial_at *a, int64_t now)
{
    memset(&a->cfg, 0, sizeof a->cfg);
    a->cfg.sensor = -1;
    a->section[0] = '\0';
    a->st = SERIAL_AT_CONFIG;
    queue(a, CMD_CONFIG);
    a->deadline = now + a->o.reply_ms;
}

static void send_start(serial_at *a, const char *cmd, int64_t now)
{
    a->cmd = cmd;
    a->refused = false;
    a->st = SERIAL_AT_STARTING;
    queue(a, cmd);
    a->deadline = now + a->o.reply_ms;
}

/* The start command for the mode and the device's AT version. */
static const char *start_command(const serial_at *a)
{
    long major = 1, minor = 0;
    switch (a->o.mode) {
    case SERIAL_AT_CONTINUOUS:
        return "AT+RUNIMPULSECONT\r";
    case SERIAL_AT_DEBUG:
        version(a->cfg.at_version, &major, &minor);
        return major > 1 || (major == 1 && minor >= 6) ? "AT+RUNIMPULSEDEBUG=n\r"
                                                       : "AT+RUNIMPULSEDEBUG\r";
    default:
        return CMD_RUN;
    }
}

static void running(serial_at *a, int64_t now)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "%.*s", (int)strcspn(a->cmd, "\r"), a->cmd);
    a->st = SERIAL_AT_RUNNING;
    a->deadline = AT_NONE;
    a->started_at = now;
    emit(a, SERIAL_AT_EV_STARTED, cmd);
}

static void stopped(serial_at *a, const char *why)
{
    a->st = SERIAL_AT_STOPPED;
    a->deadline = AT_NONE;
    a->out_len = 0;
    emit(a, SERIAL_AT_EV_STOPPED, why);
}

static void on_prompt(serial_at *a, int64_t now)
{
    switch (a->st) {
    case SERIAL_AT_HANDSHAKE:
    case SERIAL_AT_PRINT_ONLY:
        a->tries = 0; /* a later handshake (after a reset) gets every try again */
        emit(a, SERIAL_AT_EV_PROMPT, NULL);
        ask_config(a, now);
        break;
    case SERIAL_AT_CONFIG:
        if (!a->cfg.at_version[0]) strcpy(a->cfg.at_version, "1.0.0");
        emit(a, SERIAL_AT_EV_CONFIG, NULL);
        send_start(a, start_command(a), now);
        break;
    case SERIAL_AT_STARTING:
        if (a->refused && a->cmd != CMD_RUN) {
            send_start(a, CMD_RUN, now); /* the mode asked for is not there: plain windows */
            break;
        }
        if (!a->refused) emit(a, SERIAL_AT_EV_REFUSED, "the device returned to its prompt");
        a->st = SERIAL_AT_REFUSED;
        a->deadline = AT_NONE;
        break;
    case SERIAL_AT_RUNNING:
        if (now - a->started_at < AT_LEFT_MIN_MS) {
            emit(a, SERIAL_AT_EV_REFUSED, "the device returned to its prompt after the start");
            a->st = SERIAL_AT_REFUSED;
            break;
        }
        emit(a, SERIAL_AT_EV_LEFT, NULL);
        ask_config(a, now);
        break;
    case SERIAL_AT_STOPPING:
        stopped(a, "the device stopped");
        break;
    default:
        break;
    }
}

/* "===== Device info =====" -> "device info"; false when not a section header. */
static bool section_of(const char *s, size_t n, char *out)
{
    size_t k = 0;
    if (n < 3 || s[0] != '=' || s[n - 1] != '=') return false;
    while (n && (*s == '=' || *s == ' ')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == '=' || s[n - 1] == ' '))
        n--;
    for (; k < n && k < AT_SECTION_MAX - 1; k++)
        out[k] = (char)tolower((unsigned char)s[k]);
    out[k] = '\0';
    return true;
}

static void config_line(serial_at *a, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n), *val;
    char key[40];
    size_t kn, vn;
    if (section_of(s, n, a->section) || !colon) return;
    kn = (size_t)(colon - s);
    trim(&s, &kn);
    if (kn == 0 || kn >= sizeof key) return;
    for (size_t i = 0; i < kn; i++)
        key[i] = (char)tolower((unsigned char)s[i]);
    key[kn] = '\0';
    val = colon + 1;
    vn = n - (size_t)(val - s);
    trim(&val, &vn);
    if (strcmp(key, "sensor") == 0 && strcmp(a->section, "inference") == 0) {
        char buf[16];
        char *end = NULL;
        keep(buf, val, vn < sizeof buf - 1 ? vn : sizeof buf - 1);
        long v = strtol(buf, &end, 10);
        a->cfg.sensor = end != buf && !*end && v >= 0 && v <= 255 ? (int)v : -1;
        return;
    }
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        bool here = strcmp(config_keys[i].section, a->section) == 0 ||
                    (!a->section[0] && strcmp(config_keys[i].section, "device info") == 0);
        if (here && strcmp(config_keys[i].key, key) == 0)
            keep((char *)&a->cfg + config_keys[i].off, val, vn);
    }
}

static bool is_refusal(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        size_t k = strlen(refusals[i]);
        if (n >= k && memcmp(s, refusals[i], k) == 0) return true;
    }
    return false;
}

static void on_line(serial_at *a, int64_t now)
{
    const char *s = a->line;
    size_t n = a->line_len;
    trim(&s, &n);
    if (n == 0) return;
    switch (a->st) {
    case SERIAL_AT_CONFIG:
        config_line(a, s, n);
        break;
    case SERIAL_AT_STARTING:
        if (is_refusal(s, n)) {
            char text[AT_LINE_MAX + 1];
            keep(text, s, n);
            a->refused = true;
            emit(a, SERIAL_AT_EV_REFUSED, text);
        } else if (!a->refused && !(n == strcspn(a->cmd, "\r") && memcmp(s, a->cmd, n) == 0)) {
            running(a, now); /* the first output that is not the echo */
        }
        break;
    case SERIAL_AT_STOPPING:
        if (n >= 27 && memcmp(s, "Inferencing stopped by user", 27) == 0)
            stopped(a, "the device stopped");
        break;
    default:
        break;
    }
}

/* ---- public API ---- */

er_rc serial_at_create(const serial_at_opts *o, serial_at **out, er_err *err)
{
    serial_at *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) return er_fail(err, ER_NOMEM, "out of memory");
    a->o = *o;
    if (a->o.handshake_ms <= 0) a->o.handshake_ms = 5000;
    if (a->o.handshake_tries <= 0) a->o.handshake_tries = 3;
    if (a->o.reply_ms <= 0) a->o.reply_ms = 5000;
    if (a->o.stop_ms <= 0) a->o.stop_ms = 1000;
    a->deadline = AT_NONE;
    a->cfg.sensor = -1;
    *out = a;
    return ER_OK;
}

void serial_at_destroy(serial_at *a)
{
    free(a);
}

void serial_at_start(serial_at *a, int64_t now_ms)
{
    serial_at_opts o = a->o;
    memset(a, 0, sizeof *a);
    a->o = o;
    a->cfg.sensor = -1;
    a->pm = 1; /* a fresh stream starts a line */
    handshake(a, now_ms);
}

void serial_at_feed(serial_at *a, const uint8_t *data, size_t len, int64_t now_ms)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = data[i];
        if (a->pm == 2 && c == ' ') {
            a->pm = 0;
            a->line_len = 0; /* the prompt is no reply line */
            a->prompt_seen = true;
            a->prompt_at = now_ms;
            continue;
        }
        a->prompt_seen = false; /* more output: that was no prompt to answer */
        a->pm = c == '\n' || c == '\r' ? 1 : a->pm == 1 && c == '>' ? 2 : 0;
        if (c == '\n' || c == '\r') {
            a->line[a->line_len] = '\0';
            on_line(a, now_ms);
            a->line_len = 0;
        } else if (a->line_len < AT_LINE_MAX) {
            a->line[a->line_len++] = (char)c; /* the rest of a longer line is not needed */
        }
    }
}

void serial_at_tick(serial_at *a, int64_t now_ms)
{
    char why[96];
    if (a->prompt_seen && now_ms - a->prompt_at >= SERIAL_AT_PROMPT_QUIET_MS) {
        a->prompt_seen = false;
        on_prompt(a, now_ms);
    }
    if (now_ms < a->deadline) return;
    switch (a->st) {
    case SERIAL_AT_CONFIG: /* no prompt after the configuration: start over */
    case SERIAL_AT_HANDSHAKE:
        if (a->tries < a->o.handshake_tries) {
            handshake(a, now_ms);
            break;
        }
        a->st = SERIAL_AT_PRINT_ONLY;
        a->deadline = AT_NONE;
        snprintf(why, sizeof why, "no AT prompt after %d tries of %d ms: reading output only",
                 a->tries, a->o.handshake_ms);
        emit(a, SERIAL_AT_EV_NO_PROMPT, why);
        break;
    case SERIAL_AT_STARTING: /* no refusal: the first window may just take its time */
        if (a->refused) {
            a->st = SERIAL_AT_REFUSED;
            a->deadline = AT_NONE;
        } else {
            running(a, now_ms);
        }
        break;
    case SERIAL_AT_STOPPING:
        stopped(a, "no answer to b at stop");
        break;
    default:
        a->deadline = AT_NONE;
        break;
    }
}

void serial_at_stop(serial_at *a, int64_t now_ms)
{
    switch (a->st) {
    case SERIAL_AT_STARTING: /* only what was started is stopped: no wait on a silent device */
    case SERIAL_AT_RUNNING:
        a->out_len = 0; /* a half-written command is ended by the CR below */
        queue(a, CMD_STOP);
        a->next_write = now_ms;
        a->st = SERIAL_AT_STOPPING;
        a->deadline = now_ms + a->o.stop_ms;
        break;
    case SERIAL_AT_STOPPING:
        break;
    default:
        a->st = SERIAL_AT_STOPPED;
        a->deadline = AT_NONE;
        a->out_len = 0;
        break;
    }
}

size_t serial_at_output(const serial_at *a, int64_t now_ms, const uint8_t **data)
{
    if (!a->out_len || now_ms < a->next_write) return 0;
    *data = a->out;
    return a->out_len < SERIAL_AT_PIECE ? a->out_len : SERIAL_AT_PIECE;
}

void serial_at_wrote(serial_at *a, size_t n, int64_t now_ms)
{
    if (n > a->out_len) n = a->out_len;
    memmove(a->out, a->out + n, a->out_len - n);
    a->out_len -= n;
    if (n) a->next_write = now_ms + SERIAL_AT_PIECE_GAP_MS;
}

int64_t serial_at_deadline(const serial_at *a)
{
    int64_t d = a->deadline;
    if (a->out_len && a->next_write < d) d = a->next_write;
    if (a->prompt_seen && a->prompt_at + SERIAL_AT_PROMPT_QUIET_MS < d)
        d = a->prompt_at + SERIAL_AT_PROMPT_QUIET_MS;
    return d;
}

serial_at_state serial_at_state_get(const serial_at *a)
{
    return a->st;
}

const char *serial_at_state_name(serial_at_state s)
{
    return (size_t)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "unknown";
}

const serial_at_config *serial_at_config_get(const serial_at *a)
{
    return &a->cfg;
}

char *serial_at_config_json(const serial_at *a)
{
    const serial_at_config *c = &a->cfg;
    const struct {
        const char *key;
        const char *val;
    } texts[] = {
        {"device_id", c->id},
        {"device_type", c->type},
        {"at_version", c->at_version},
        {"model_type", c->model_type},
        {"resolutions", c->resolutions},
    };
    cJSON *o = cJSON_CreateObject();
    char *out = NULL;
    bool ok = o != NULL;
    long baud = 0;
    char *end = NULL;
    for (size_t i = 0; ok && i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i].val[0]) ok = cJSON_AddStringToObject(o, texts[i].key, texts[i].val) != NULL;
    baud = strtol(c->baudrate, &end, 10);
    if (ok && end != c->baudrate && !*end && baud > 0)
        ok = cJSON_AddNumberToObject(o, "transfer_baudrate", (double)baud) != NULL;
    if (ok && c->sensor >= 0) {
        const char *name = (size_t)c->sensor < sizeof sensor_names / sizeof sensor_names[0] &&
                                   sensor_names[c->sensor]
                               ? sensor_names[c->sensor]
                               : "unknown";
        ok = cJSON_AddStringToObject(o, "sensor", name) != NULL;
    }
    if (ok) out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}
