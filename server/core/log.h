/* log.h - leveled logging to stderr: "2026-11-24T10:00:00.123Z info  store: message".
 * Thread-safe (one fprintf per line). Under Greengrass stderr goes to the component log. */
#ifndef EI_CORE_LOG_H
#define EI_CORE_LOG_H

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level level);
/* Parses "debug|info|warn|error"; returns -1 if unknown. */
int log_level_parse(const char *s);
void log_msg(log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like log_msg, but at most LOG_RATE_MAX lines of one (module, kind) per LOG_RATE_WINDOW_MS:
 * for lines a client can trigger at will (an accept storm, connections cut at a deadline). The
 * first line after a window that dropped some says how many. kind: a short static name. */
#define LOG_RATE_MAX 5
#define LOG_RATE_WINDOW_MS 5000
void log_ratelimited(log_level level, const char *module, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
