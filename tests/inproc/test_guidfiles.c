/* test_guidfiles.c - export of the cache as <guid>.json/.img pairs and import back into a new
 * database: every inference and image survives, a second import is skipped, bad files are
 * counted and named without stopping the rest. Real SQLite files in a temp dir.
 * Hostile directories (export runs as root): a planted symlink under the temporary or the final
 * name is never written through, a directory another user owns or anyone may write to is
 * refused, and import never follows a symlinked or special input out of the directory. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "ingest/normalize.h"
#include "media/image.h"
#include "media/synth.h"
#include "store/store.h"
#include "tools/guidfiles.h"

static char tmpdir[] = "/tmp/ei-guidfiles-XXXXXX";

static store *open_store(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    store_opts so = {.path = path, .sync_full = false};
    store *st = NULL;
    er_err err;
    CHECK_EQ_INT(store_create(&so, &st, &err), ER_OK);
    return st;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l > s && strcmp(e->d_name + l - s, suffix) == 0) n++;
    }
    if (d) closedir(d);
    return n;
}

static void put_sample(store *st, int i, bool with_image)
{
    char doc[512];
    if (i == 5) /* a visual-anomaly grid: its max/mean must survive the round trip too */
        snprintf(doc, sizeof doc,
                 "{\"result\":{\"visual_anomaly_grid\":[{\"label\":\"anomaly\",\"value\":"
                 "0.7,\"x\":8,\"y\":8,\"width\":8,\"height\":8}],\"visual_anomaly_max\":0.7,"
                 "\"visual_anomaly_mean\":0.2},\"ts\":%d,\"timing\":{\"dsp\":3,"
                 "\"classification\":4,\"anomaly\":5}}",
                 1000 + i);
    else
        snprintf(doc, sizeof doc,
                 "{\"result\":{\"classification\":{\"a\":%.2f,\"b\":%.2f}},\"ts\":%d,"
                 "\"timing\":{\"dsp\":1,\"classification\":2,\"anomaly\":0}}",
                 i / 10.0, 1 - i / 10.0, 1000 + i);
    normalize_opts no = {.device = "dev", .source = "test", .now_ms = 1};
    inference *inf = NULL;
    er_err err;
    CHECK_EQ_INT(normalize_json(doc, strlen(doc), &no, &inf, &err), ER_OK);
    if (!inf) return;
    if (with_image) {
        synth_rect r = {4, 4, 8, 8, 200, 10, 10};
        CHECK_EQ_INT(
            synth_jpeg(32, 24, &r, 1, (uint32_t)i + 1, 80, &inf->image.data, &inf->image.len),
            ER_OK);
        CHECK_EQ_INT(media_probe(inf->image.data, inf->image.len, &inf->image, &err), ER_OK);
    }
    store_put_result res;
    CHECK_EQ_INT(store_put(st, inf, &res), ER_OK);
    CHECK_EQ_INT(res.rc, ER_OK);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static bool file_is(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strcmp(buf, text) == 0;
}

/* The guid of the one inference in st. */
static void only_guid(store *st, char *out)
{
    store_filter flt = {.limit = 10};
    store_page p = {0};
    CHECK_EQ_INT(store_list(st, &flt, &p), ER_OK);
    CHECK_EQ_INT(p.n, 1);
    snprintf(out, UTIL_UUID_LEN + 1, "%s", p.n ? p.items[0]->guid : "");
    store_page_free(&p);
}

static void test_hostile_dirs(const config *cfg)
{
    char dir[600], victim[600], link_path[700], guid[UTIL_UUID_LEN + 1];
    er_err err;
    store *one = open_store("one.db");
    put_sample(one, 1, false);
    only_guid(one, guid);
    snprintf(victim, sizeof victim, "%s/victim", tmpdir);
    write_text(victim, "precious");

    /* planted: the temporary name and the final name, both symlinks to the victim */
    snprintf(dir, sizeof dir, "%s/planted", tmpdir);
    CHECK_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(link_path, sizeof link_path, "%s/.%s.json.tmp", dir, guid);
    CHECK_EQ_INT(symlink(victim, link_path), 0);
    guidfiles_stats st = {0};
    CHECK_EQ_INT(guidfiles_export(one, dir, cfg, &st, &err), ER_OK);
    CHECK_EQ_INT(st.done, 1);
    CHECK(file_is(victim, "precious"));
    CHECK_EQ_INT(count_files(dir, ".tmp"), 0); /* the planted link lost its name */
    snprintf(link_path, sizeof link_path, "%s/%s.json", dir, guid);
    CHECK_EQ_INT(unlink(link_path), 0);
    CHECK_EQ_INT(symlink(victim, link_path), 0);
    st = (guidfiles_stats){0};
    CHECK_EQ_INT(guidfiles_export(one, dir, cfg, &st, &err), ER_OK);
    CHECK(file_is(victim, "precious"));
    struct stat sb;
    CHECK(lstat(link_path, &sb) == 0 && S_ISREG(sb.st_mode)); /* replaced, not followed */
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);

    /* a directory anyone may write to (no sticky bit) is refused, nothing written */
    snprintf(dir, sizeof dir, "%s/open", tmpdir);
    CHECK_EQ_INT(mkdir(dir, 0700), 0);
    CHECK_EQ_INT(chmod(dir, 0777), 0);
    CHECK_EQ_INT(guidfiles_export(one, dir, cfg, &st, &err), ER_INVALID);
    CHECK(strstr(err.msg, "every user may write") != NULL);
    CHECK_EQ_INT(count_files(dir, ".json"), 0);
    CHECK_EQ_INT(guidfiles_import(one, dir, cfg, &st, &err), ER_INVALID);

    /* a directory another user owns is refused (as root: give it away) */
    if (geteuid() == 0) {
        snprintf(dir, sizeof dir, "%s/foreign", tmpdir);
        CHECK_EQ_INT(mkdir(dir, 0755), 0);
        CHECK_EQ_INT(chown(dir, 4242, 4242), 0);
        CHECK_EQ_INT(guidfiles_export(one, dir, cfg, &st, &err), ER_INVALID);
        CHECK(strstr(err.msg, "owned by uid 4242") != NULL);
        CHECK_EQ_INT(count_files(dir, ".json"), 0);
    }

    /* import: a symlinked .json and a symlinked .img leading out of the directory, and a FIFO
     * (which must not hang the import), are refused and counted; a real pair still imports */
    char out[600], path[700];
    snprintf(dir, sizeof dir, "%s/in", tmpdir);
    CHECK_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(out, sizeof out, "%s/outside.json", tmpdir);
    write_text(out, "{\"result\":{\"classification\":{\"leak\":1}}}");
    snprintf(path, sizeof path, "%s/linked.json", dir);
    CHECK_EQ_INT(symlink(out, path), 0);
    snprintf(path, sizeof path, "%s/withimg.json", dir);
    write_text(path, "{\"result\":{\"classification\":{\"img\":1}}}");
    snprintf(path, sizeof path, "%s/withimg.img", dir);
    CHECK_EQ_INT(symlink(victim, path), 0);
    snprintf(path, sizeof path, "%s/fifo.json", dir);
    CHECK_EQ_INT(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/good.json", dir);
    write_text(path, "{\"result\":{\"classification\":{\"good\":1}}}");
    store *dst = open_store("hostile-import.db");
    guidfiles_stats in = {0};
    CHECK_EQ_INT(guidfiles_import(dst, dir, cfg, &in, &err), ER_INVALID);
    CHECK_EQ_INT(in.done, 1);
    CHECK_EQ_INT(in.failed, 3);
    store_info info;
    CHECK_EQ_INT(store_get_info(dst, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 1);
    store_destroy(dst);
    store_destroy(one);
}

int main(void)
{
    CHECK(mkdtemp(tmpdir) != NULL);
    CHECK_EQ_INT(media_init("test"), ER_OK);
    config cfg;
    er_err err;
    const char *cfg_json = "{\"device_mac_suffix\":false}";
    CHECK_EQ_INT(config_load_json(&cfg, cfg_json, strlen(cfg_json), &err), ER_OK);

    store *src = open_store("src.db");
    for (int i = 0; i < 6; i++)
        put_sample(src, i, i % 2 == 0);
    char out[512];
    snprintf(out, sizeof out, "%s/export", tmpdir);
    guidfiles_stats st = {0};
    CHECK_EQ_INT(guidfiles_export(src, out, &cfg, &st, &err), ER_OK);
    CHECK_EQ_INT(st.done, 6);
    CHECK_EQ_INT(count_files(out, ".json"), 6);
    CHECK_EQ_INT(count_files(out, ".img"), 3);
    CHECK_EQ_INT(count_files(out, ".tmp"), 0);

    /* A stray bad file is reported and counted, the rest still imports. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/not-json.json", out);
    FILE *f = fopen(bad, "w");
    fputs("{ not json", f);
    fclose(f);

    store *dst = open_store("dst.db");
    guidfiles_stats in = {0};
    CHECK_EQ_INT(guidfiles_import(dst, out, &cfg, &in, &err), ER_INVALID);
    CHECK_EQ_INT(in.done, 6);
    CHECK_EQ_INT(in.failed, 1);
    unlink(bad);

    /* Same ids, same results, same images. */
    store_filter flt = {.limit = 100};
    store_page a = {0}, b = {0};
    CHECK_EQ_INT(store_list(src, &flt, &a), ER_OK);
    CHECK_EQ_INT(store_list(dst, &flt, &b), ER_OK);
    CHECK_EQ_INT(a.n, 6);
    CHECK_EQ_INT(b.n, 6);
    for (size_t i = 0; i < a.n; i++) {
        inference *x = a.items[i], *y = NULL;
        CHECK_EQ_INT(store_get(dst, x->guid, &y), ER_OK);
        if (!y) continue;
        CHECK_EQ_INT(y->ts, x->ts);
        CHECK_EQ_STR(y->result_json, x->result_json);
        CHECK_EQ_STR(y->timing_json, x->timing_json);
        CHECK_EQ_STR(y->kind == x->kind ? "same" : "diff", "same");
        CHECK_EQ_INT(y->image.len, x->image.len);
        if (x->image.len) {
            inference_image ia = {0}, ib = {0};
            CHECK_EQ_INT(store_get_image(src, x->guid, &ia), ER_OK);
            CHECK_EQ_INT(store_get_image(dst, x->guid, &ib), ER_OK);
            CHECK(ia.len == ib.len && ia.data && ib.data && memcmp(ia.data, ib.data, ia.len) == 0);
            free(ia.data);
            free(ib.data);
        }
        inference_destroy(y);
    }
    store_page_free(&a);
    store_page_free(&b);

    /* Importing again stores nothing twice. */
    guidfiles_stats again = {0};
    CHECK_EQ_INT(guidfiles_import(dst, out, &cfg, &again, &err), ER_OK);
    CHECK_EQ_INT(again.done, 0);
    CHECK_EQ_INT(again.skipped, 6);
    store_info info;
    CHECK_EQ_INT(store_get_info(dst, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 6);

    store_destroy(src);
    store_destroy(dst);
    test_hostile_dirs(&cfg);
    config_free(&cfg);
    media_shutdown();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK_EQ_INT(system(cmd), 0);
    return check_summary();
}
