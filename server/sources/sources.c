/* sources.c - see sources.h: the kinds table, the slots the sources report into, and starting
 * and stopping them. One stop pipe is shared by all sources: destroy writes a byte to it and
 * never reads it, so every source's poll() on the read end wakes at once. */
#include "sources/sources_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* ---- the kinds: each one's file exports its row ---- */

extern const sources_kind sources_kind_serial;
extern const sources_kind sources_kind_runner_ws;
extern const sources_kind sources_kind_eim;

const sources_kind *const sources__kinds[] = {&sources_kind_serial, &sources_kind_runner_ws,
                                              &sources_kind_eim};
const size_t sources__n_kinds = sizeof sources__kinds / sizeof sources__kinds[0];

const sources_kind *sources__kind(const char *name)
{
    for (size_t i = 0; name && i < sources__n_kinds; i++)
        if (strcmp(sources__kinds[i]->name, name) == 0) return sources__kinds[i];
    return NULL;
}

/* ---- stopping ---- */

bool sources__wait_stop(int stop_fd, int ms)
{
    struct pollfd p = {.fd = stop_fd, .events = POLLIN};
    int n;
    do {
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

/* ---- slots ---- */

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

void sources_slot_model(sources_slot *sl, store *st, const char *info)
{
    char *copy = strdup(info);
    if (!copy) return;
    pthread_mutex_lock(&sl->mu);
    free(sl->model_info);
    sl->model_info = copy;
    pthread_mutex_unlock(&sl->mu);
    er_rc rc = store_meta_set(st, "model_info", info);
    if (rc)
        log_warn("sources", "source \"%s\": cannot save the model info: %s", sl->st.name,
                 er_rc_name(rc));
}

void sources_slot_attempt(sources_slot *sl)
{
    pthread_mutex_lock(&sl->mu);
    sl->st.reconnects++;
    sl->st.backoff_ms = 0;
    pthread_mutex_unlock(&sl->mu);
}

/* ---- lifecycle ---- */

er_rc sources_create(const config *cfg, store *st, const char *device, wsloop *loop, sources **out,
                     er_err *err)
{
    char *json = NULL;
    cJSON *arr = NULL;
    sources *s = NULL;
    er_rc rc = sources_effective(cfg, &json, err);
    if (!rc) rc = sources_validate(json, err);
    if (rc) goto fail;
    rc = ER_NOMEM;
    if (!(s = calloc(1, sizeof *s))) goto fail;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    if (pipe(s->stop_pipe) != 0 || fcntl(s->stop_pipe[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(s->stop_pipe[1], F_SETFD, FD_CLOEXEC) != 0) {
        rc = er_fail(err, ER_IO, "sources: cannot create the stop pipe");
        goto fail;
    }
    if (!(arr = cJSON_Parse(json))) goto fail;
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n && !(s->e = calloc(n, sizeof *s->e))) goto fail;
    const sources_env env = {.st = st,
                             .device = device,
                             .stop_fd = s->stop_pipe[0],
                             .loop = loop,
                             .lim = normalize_limits_of(cfg)};
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, arr)
    {
        /* validated: every entry has a good name and a known kind */
        sources_entry *e = &s->e[s->n];
        pthread_mutex_init(&e->slot.mu, NULL);
        s->n++; /* from here destroy handles e */
        snprintf(e->slot.st.name, sizeof e->slot.st.name, "%s",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name")));
        e->kind = sources__kind(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "kind")));
        e->slot.st.kind = e->kind;
        e->slot.st.state = "starting";
        if ((rc = e->kind->create(it, &env, &e->slot, &e->source, err))) goto fail;
    }
    if (!s->n)
        log_info("sources", "no sources configured: inferences arrive only through the HTTP API "
                            "(`sources`, ei_local_model_file or serial_device add some)");
    cJSON_Delete(arr);
    free(json);
    *out = s;
    return ER_OK;
fail:
    cJSON_Delete(arr);
    free(json);
    /* Still setup time: take the sources' timers off the loop, which outlives them. */
    for (size_t i = 0; s && i < s->n; i++)
        if (s->e[i].kind->cancel && s->e[i].source) s->e[i].kind->cancel(s->e[i].source);
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
        if (s->e[i].source) s->e[i].kind->destroy(s->e[i].source);
        free(s->e[i].slot.model_info);
        pthread_mutex_destroy(&s->e[i].slot.mu);
    }
    free(s->e);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    free(s);
}
