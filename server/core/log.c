/* log.c - see log.h. */
#include "core/log.h"

#include <stdarg.h>
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

void log_msg(log_level level, const char *module, const char *fmt, ...)
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
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
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
