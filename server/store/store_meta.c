/* store_meta.c - the small persistent key/value state (settings changed by command survive
 * restarts): writes are jobs of the writer's transaction, reads use a borrowed reader. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

er_rc store__exec_meta(store *s, job *j)
{
    sqlite3_stmt *st = s->wst[WSTMT_META_SET];
    sqlite3_bind_text(st, 1, j->guid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, j->text, -1, SQLITE_STATIC);
    int src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : store__db_error(s, s->wdb, src, "writing meta");
}

er_rc store_meta_get(store *s, const char *key, char **value)
{
    *value = NULL;
    if (!key) return ER_INVALID;
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_META_GET];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *value = col_strdup(st, 0);
        if (!*value) rc = ER_NOMEM;
    } else {
        rc = src == SQLITE_DONE ? ER_NOTFOUND : store__db_error(s, r->db, src, "reading meta");
    }
    stmt_done(st);
    store__reader_put(s, r);
    return rc;
}

er_rc store_meta_set(store *s, const char *key, const char *value)
{
    if (!key || !value) return ER_INVALID;
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_META;
    j->guid = strdup(key);
    j->text = strdup(value);
    if (!j->guid || !j->text) {
        store__free_job(j);
        return ER_NOMEM;
    }
    return store__run_sync(s, j);
}
