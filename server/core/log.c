/* log.c - see log.h. */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile log_level g_level = LOG_INFO;

void log_set_level(log_level level)
{
    g_level = level;
}

int log_level_parse(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

__attribute__((format(printf, 3, 0))) static void log_vmsg(log_level level, const char *module,
                                                           const char *fmt, va_list ap)
{
    static const char *const tags[] = {"debug", "info ", "warn ", "error"};
    if (level < g_level) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, tags[level], module);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* Messages quote client input (paths, ids, labels): a decoded %0a must not be able to
     * forge a second log line, so control bytes are written as \xNN. */
    char safe[sizeof line + 64];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)line; *p && o + 5 < sizeof safe; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(safe + o, sizeof safe - o, "\\x%02x", *p);
        else
            safe[o++] = (char)*p;
    }
    safe[o] = '\0';
    /* one call per line keeps lines from different threads whole */
    fprintf(stderr, "%s\n", safe);
}

void log_msg(log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, module, fmt, ap);
    va_end(ap);
}

/* ---- rate-limited lines ---- */

#define LOG_RATE_SLOTS 32
#define LOG_RATE_KEY 48

/* One message kind: the lines of its current window. */
typedef struct rate_slot {
    char key[LOG_RATE_KEY]; /* "module/kind", "" = free */
    int64_t window_ms;      /* monotonic start of the current window */
    int n;                  /* lines written in it */
    long long suppressed;   /* lines dropped in it */
} rate_slot;

static pthread_mutex_t g_rate_mu = PTHREAD_MUTEX_INITIALIZER;
static rate_slot g_rate[LOG_RATE_SLOTS];

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Decides under the mutex whether this line goes out; *dropped is what the window that just
 * ended suppressed (reported once, before the line). Kinds past the table share its last slot. */
static bool rate_allow(const char *key, long long *dropped)
{
    int64_t now = mono_ms();
    *dropped = 0;
    pthread_mutex_lock(&g_rate_mu);
    rate_slot *s = &g_rate[LOG_RATE_SLOTS - 1];
    for (size_t i = 0; i < LOG_RATE_SLOTS; i++) {
        if (!g_rate[i].key[0]) snprintf(g_rate[i].key, sizeof g_rate[i].key, "%s", key);
        if (strcmp(g_rate[i].key, key) == 0) {
            s = &g_rate[i];
            break;
        }
    }
    if (s->n == 0 || now - s->window_ms >= LOG_RATE_WINDOW_MS) {
        *dropped = s->suppressed;
        s->window_ms = now;
        s->n = 0;
        s->suppressed = 0;
    }
    bool ok = s->n < LOG_RATE_MAX;
    if (ok)
        s->n++;
    else
        s->suppressed++;
    pthread_mutex_unlock(&g_rate_mu);
    return ok;
}

void log_ratelimited(log_level level, const char *module, const char *kind, const char *fmt, ...)
{
    if (level < g_level) return;
    char key[LOG_RATE_KEY];
    snprintf(key, sizeof key, "%s/%s", module, kind);
    long long dropped;
    bool ok = rate_allow(key, &dropped);
    if (dropped)
        log_msg(level, module, "(%lld more '%s' lines were suppressed in %d s)", dropped, kind,
                LOG_RATE_WINDOW_MS / 1000);
    if (!ok) return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, module, fmt, ap);
    va_end(ap);
}
