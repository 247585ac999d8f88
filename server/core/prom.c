/* prom.c - see prom.h. */
#include "core/prom.h"

er_rc prom_head(util_buf *b, const prom_metric *m)
{
    return util_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
}

er_rc prom_value(util_buf *b, const prom_metric *m, int64_t v)
{
    er_rc rc = prom_head(b, m);
    if (rc == ER_OK) rc = util_buf_printf(b, "%s %lld\n", m->name, (long long)v);
    return rc;
}

er_rc prom_label(util_buf *b, const char *s)
{
    er_rc rc = ER_OK;
    if (!s) return ER_OK;
    const char *run = s; /* start of the bytes not yet copied */
    for (; rc == ER_OK && *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc) continue;
        rc = util_buf_append(b, run, (size_t)(s - run));
        if (rc == ER_OK) rc = util_buf_append(b, esc, 2);
        run = s + 1;
    }
    if (rc == ER_OK) rc = util_buf_append(b, run, (size_t)(s - run));
    return rc;
}

er_rc prom_sample(util_buf *b, const char *name, const char *const *kv, size_t n, uint64_t v)
{
    er_rc rc = util_buf_printf(b, "%s", name);
    for (size_t i = 0; rc == ER_OK && i < n; i++) {
        rc = util_buf_printf(b, "%s%s=\"", i ? "," : "{", kv[2 * i]);
        if (rc == ER_OK) rc = prom_label(b, kv[2 * i + 1]);
        if (rc == ER_OK) rc = util_buf_append(b, "\"", 1);
    }
    if (rc == ER_OK && n) rc = util_buf_append(b, "}", 1);
    if (rc == ER_OK) rc = util_buf_printf(b, " %llu\n", (unsigned long long)v);
    return rc;
}
