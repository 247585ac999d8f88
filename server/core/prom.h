/* prom.h - the one writer of the Prometheus text exposition format (0.0.4) that /metrics
 * serves. Each module renders its own series with these calls (usually by walking a table of
 * its counters), so the format, the # HELP / # TYPE lines and the label escaping live here
 * once. Functions append to a util_buf and return ER_NOMEM when it cannot grow; a caller may
 * keep writing after a failure and check the last result, because a failed append leaves the
 * buffer as it was. */
#ifndef EI_CORE_PROM_H
#define EI_CORE_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "core/util.h"

/* One metric family as a module describes it; type is "counter" or "gauge". */
typedef struct prom_metric {
    const char *name;
    const char *type;
    const char *help;
} prom_metric;

/* "# HELP name help\n# TYPE name type\n" */
er_rc prom_head(util_buf *b, const prom_metric *m);
/* The head and one unlabelled sample "name v\n". */
er_rc prom_value(util_buf *b, const prom_metric *m, int64_t v);
/* One labelled sample: name{k0="v0",k1="v1"} v, from n key/value pairs in kv (kv[2i] the
 * name, kv[2i+1] the value, escaped here). No head: call prom_head once per family. */
er_rc prom_sample(util_buf *b, const char *name, const char *const *kv, size_t n, uint64_t v);
/* A label value with backslash, double quote and newline escaped (NULL appends nothing). */
er_rc prom_label(util_buf *b, const char *s);

#endif
