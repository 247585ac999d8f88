/* sources.c - see sources.h. One stop pipe is shared by all sources: destroy writes a byte to
 * it and never reads it, so every source's poll() on the read end wakes at once. */
#include "sources/sources.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "sources/runner_ws.h"
#include "sources/serial_source.h"

typedef struct source_entry {
    sources_slot slot;
    serial_source *serial; /* kind "serial"; NULL otherwise */
    runner_ws *runner;     /* kind "runner-ws"; NULL otherwise */
} source_entry;

struct sources {
    int stop_pipe[2];
    size_t n;
    source_entry *e;
};

void sources_slot_state(sources_slot *sl, const char *state, const char *fmt, ...)
{
    pthread_mutex_lock(&sl->mu);
    sl->st.state = state;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sl->st.last_error, sizeof sl->st.last_error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&sl->mu);
}

void sources_slot_backoff(sources_slot *sl, int64_t ms)
{
    pthread_mutex_lock(&sl->mu);
    sl->st.backoff_ms = ms;
    pthread_mutex_unlock(&sl->mu);
}

void sources_slot_attempt(sources_slot *sl)
{
    pthread_mutex_lock(&sl->mu);
    sl->st.reconnects++;
    sl->st.backoff_ms = 0;
    pthread_mutex_unlock(&sl->mu);
}

er_rc sources_create(const config *cfg, store *st, const char *device, wsloop *loop, sources **out,
                     er_err *err)
{
    er_rc rc = ER_NOMEM;
    cJSON *arr = NULL;
    sources *s = calloc(1, sizeof *s);
    if (!s) goto fail;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    if (pipe(s->stop_pipe) != 0 || fcntl(s->stop_pipe[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(s->stop_pipe[1], F_SETFD, FD_CLOEXEC) != 0) {
        rc = er_fail(err, ER_IO, "sources: cannot create the stop pipe");
        goto fail;
    }
    arr = cJSON_Parse(cfg->sources_json ? cfg->sources_json : "[]");
    if (!cJSON_IsArray(arr)) {
        rc = er_fail(err, ER_CONFIG, "sources: expected a JSON array");
        goto fail;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n) {
        s->e = calloc(n, sizeof *s->e);
        if (!s->e) goto fail;
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, arr)
    {
        source_entry *e = &s->e[s->n];
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "kind"));
        if (!name || !kind) {
            rc = er_fail(err, ER_CONFIG, "sources[%zu]: needs a \"name\" and a \"kind\"", s->n);
            goto fail;
        }
        if (strlen(name) >= SOURCES_NAME_MAX || !name[0]) {
            rc = er_fail(err, ER_CONFIG, "sources[%zu].name: 1 to %d characters", s->n,
                         SOURCES_NAME_MAX - 1);
            goto fail;
        }
        for (size_t j = 0; j < s->n; j++)
            if (strcmp(s->e[j].slot.st.name, name) == 0) {
                rc = er_fail(err, ER_CONFIG, "sources \"%.40s\": two sources have this name", name);
                goto fail;
            }
        pthread_mutex_init(&e->slot.mu, NULL);
        s->n++; /* from here destroy handles e */
        snprintf(e->slot.st.name, sizeof e->slot.st.name, "%s", name);
        snprintf(e->slot.st.kind, sizeof e->slot.st.kind, "%s", kind);
        e->slot.st.state = "starting";
        if (strcmp(kind, "serial") == 0) {
            rc = serial_source_create(it, st, device, s->stop_pipe[0], &e->slot, &e->serial, err);
            if (rc) goto fail;
        } else if (strcmp(kind, "runner-ws") == 0) {
            rc = runner_ws_create(it, st, device, loop, &e->slot, &e->runner, err);
            if (rc) goto fail;
        } else {
            rc = er_fail(err, ER_CONFIG,
                         "sources \"%.40s\".kind: unknown kind \"%.40s\" (serial, runner-ws)", name,
                         kind);
            goto fail;
        }
    }
    cJSON_Delete(arr);
    *out = s;
    return ER_OK;
fail:
    cJSON_Delete(arr);
    /* Still setup time: take the runners' timers off the loop, which outlives them. */
    for (size_t i = 0; s && i < s->n; i++)
        runner_ws_cancel(s->e[i].runner);
    sources_destroy(s);
    return rc;
}

void sources_destroy(sources *s)
{
    if (!s) return;
    if (s->stop_pipe[1] >= 0) {
        ssize_t w;
        do {
            w = write(s->stop_pipe[1], "x", 1);
        } while (w < 0 && errno == EINTR);
    }
    for (size_t i = 0; i < s->n; i++) {
        serial_source_destroy(s->e[i].serial);
        runner_ws_destroy(s->e[i].runner);
        free(s->e[i].slot.model_info);
        pthread_mutex_destroy(&s->e[i].slot.mu);
    }
    free(s->e);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    free(s);
}

size_t sources_count(const sources *s)
{
    return s ? s->n : 0;
}

er_rc sources_status_get(sources *s, size_t i, sources_status *out)
{
    if (!s || i >= s->n) return ER_NOTFOUND;
    sources_slot *sl = &s->e[i].slot;
    pthread_mutex_lock(&sl->mu);
    *out = sl->st;
    pthread_mutex_unlock(&sl->mu);
    return ER_OK;
}

er_rc sources_model_info_get(sources *s, size_t i, char **out)
{
    *out = NULL;
    if (!s || i >= s->n) return ER_NOTFOUND;
    sources_slot *sl = &s->e[i].slot;
    er_rc rc = ER_OK;
    pthread_mutex_lock(&sl->mu);
    if (sl->model_info && !(*out = strdup(sl->model_info))) rc = ER_NOMEM;
    pthread_mutex_unlock(&sl->mu);
    return rc;
}
