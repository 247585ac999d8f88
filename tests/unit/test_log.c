/* test_log.c - log lines: level filter, and control bytes from client input escaped so one
 * message can never forge a second line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/log.h"

/* Runs the logging calls with stderr redirected to a temp file; returns what was written. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/ei-test-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

static void log_forgery(void)
{
    log_info("http", "GET %s -> 404", "/x\n2026-01-01T00:00:00.000Z warn  auth: forged\r\x7f");
}

static void log_levels(void)
{
    log_set_level(LOG_WARN);
    log_info("t", "hidden");
    log_warn("t", "shown");
    log_set_level(LOG_INFO);
}

int main(void)
{
    char *out = capture(log_forgery);
    CHECK(strstr(out, "info  http: GET /x\\x0a2026-01-01T00:00:00.000Z warn  auth: "
                      "forged\\x0d\\x7f -> 404\n") != NULL);
    CHECK_EQ_INT(strchr(out, '\n') - out + 1, (long long)strlen(out)); /* exactly one line */
    out = capture(log_levels);
    CHECK(strstr(out, "hidden") == NULL);
    CHECK(strstr(out, "warn  t: shown") != NULL);
    CHECK_EQ_INT(log_level_parse("debug"), LOG_DEBUG);
    CHECK_EQ_INT(log_level_parse("loud"), -1);
    return check_summary();
}
