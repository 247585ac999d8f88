/* test_eim_process.c - server/eim's process handling with the stand-in model
 * (tests/eim/fake_eim.py): a model that exits at start (the error carries what it printed), one
 * that never opens its socket (start timeout), a missing or non-executable model file, a socket
 * path too long, a model that dies mid-stream (classify fails at once, nothing hangs), one that
 * stops answering (timeout), cancellation, a chatty model (its output drained), and the stop:
 * SIGINT honoured, SIGHUP and SIGKILL for a model that ignores it. After each: no descriptor,
 * child, socket directory or shared memory left. */
#include <fcntl.h>
#include <signal.h>

#include "core/util.h"
#include "eim_fixture.h"

static er_rc start(const eim_fx *fx, eim_opts *o, eim_model **m, er_err *err)
{
    memset(err, 0, sizeof *err);
    er_rc rc = eim_model_start(o, m, err);
    CHECK(rc == ER_OK ? *m != NULL : *m == NULL);
    CHECK(rc == ER_OK || err->msg[0]);
    (void)fx;
    return rc;
}

static void test_exit_at_start(void)
{
    eim_fx fx;
    fx_init(&fx, 96, 96);
    fx_set("EXIT_AT_START", "7");
    eim_opts o = fx_opts(&fx);
    eim_model *m = NULL;
    er_err err;
    int64_t t0 = util_mono_ms();
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_IO);
    CHECK(util_mono_ms() - t0 < 5000); /* the exit is noticed, not a timeout */
    CHECK(strstr(err.msg, "(code: 7)") != NULL);
    CHECK(strstr(err.msg, "exiting at start as FAKE_EIM_EXIT_AT_START asks") != NULL);
    CHECK(strstr(err.msg, "this line went to stderr") != NULL);
    fx_done(&fx);
}

static void test_start_timeout_and_cancel(void)
{
    eim_fx fx;
    fx_init(&fx, 96, 96);
    fx_set("START_DELAY_MS", "30000");
    eim_opts o = fx_opts(&fx);
    o.start_timeout_ms = 300;
    o.stop_grace_ms = 200;
    eim_model *m = NULL;
    er_err err;
    int64_t t0 = util_mono_ms();
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_AGAIN);
    int64_t took = util_mono_ms() - t0;
    CHECK(took >= 300 && took < 5000);
    /* a cancel descriptor that is readable ends the start at once */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    o.start_timeout_ms = 20000;
    o.cancel_fd = p[0];
    t0 = util_mono_ms();
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_CLOSED);
    CHECK(util_mono_ms() - t0 < 5000);
    close(p[0]);
    close(p[1]);
    fx_done(&fx);
}

static void test_model_file(void)
{
    eim_fx fx;
    fx_init(&fx, 96, 96);
    eim_opts o = fx_opts(&fx);
    eim_model *m = NULL;
    er_err err;
    char path[160];
    snprintf(path, sizeof path, "%s/missing.eim", fx.base);
    o.model_file = path;
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_NOTFOUND);
    CHECK(strstr(err.msg, "missing.eim") != NULL);
    /* a model file without execute permission, the relay's own: made executable (u+x, and g+x
     * and o+x only where readable) */
    snprintf(path, sizeof path, "%s/model.eim", fx.base);
    size_t len = 0;
    char *text = fx_read(fx.wrapper, &len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    CHECK(fd >= 0 && text && write(fd, text, len) == (ssize_t)len);
    close(fd);
    free(text);
    CHECK(chmod(path, 0640) == 0);
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0750);
    eim_model_stop(m);
    unlink(path);
    /* a directory is no model */
    o.model_file = fx.socks;
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_IO);
    /* a socket directory whose socket path would not fit sun_path */
    char longdir[200];
    memset(longdir, 'd', sizeof longdir);
    memcpy(longdir, "/tmp/", 5);
    longdir[120] = '\0';
    o = fx_opts(&fx);
    o.tmp_dir = longdir;
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_IO);
    CHECK(strstr(err.msg, "108") != NULL);
    fx_done(&fx);
}

static void test_dies_mid_stream(void)
{
    eim_fx fx;
    fx_init(&fx, 2, 2);
    fx_set("DIE_AFTER", "2");
    eim_model *m = fx_start(&fx);
    if (!m) return;
    uint32_t px[4] = {0};
    er_err err;
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(fx_classify(m, px, 4, 5000, &err), ER_OK);
    int64_t t0 = util_mono_ms();
    CHECK_EQ_INT(fx_classify(m, px, 4, 20000, &err), ER_IO);
    CHECK(util_mono_ms() - t0 < 5000); /* the closed connection, not the timeout */
    CHECK(strstr(err.msg, "(code: 3)") != NULL);
    CHECK(strstr(err.msg, "dying after 2 classifies") != NULL);
    /* broken from now on: at once, without asking the model */
    t0 = util_mono_ms();
    CHECK_EQ_INT(fx_classify(m, px, 4, 20000, &err), ER_IO);
    CHECK_EQ_INT(eim_model_set_threshold(m, 42, "min_score", 0.5, &err), ER_IO);
    CHECK(util_mono_ms() - t0 < 1000);
    int status = eim_model_stop(m);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    fx_done(&fx);
}

static void test_hangs(void)
{
    eim_fx fx;
    fx_init(&fx, 2, 2);
    fx_set("HANG_AFTER", "1");
    eim_model *m = fx_start(&fx);
    if (!m) return;
    uint32_t px[4] = {0};
    er_err err;
    CHECK_EQ_INT(fx_classify(m, px, 4, 5000, &err), ER_OK);
    int64_t t0 = util_mono_ms();
    CHECK_EQ_INT(fx_classify(m, px, 4, 300, &err), ER_AGAIN);
    int64_t took = util_mono_ms() - t0;
    CHECK(took >= 300 && took < 3000);
    CHECK(strstr(err.msg, "within 300 ms") != NULL);
    CHECK_EQ_INT(fx_classify(m, px, 4, 300, &err), ER_IO);
    t0 = util_mono_ms();
    int status = eim_model_stop(m); /* a hanging model still honours SIGINT */
    CHECK(util_mono_ms() - t0 < 2000);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGINT);
    fx_done(&fx);
}

static void test_cancel_classify(void)
{
    eim_fx fx;
    fx_init(&fx, 2, 2);
    fx_set("LATENCY_MS", "30000");
    int p[2];
    CHECK(pipe(p) == 0);
    eim_opts o = fx_opts(&fx);
    o.cancel_fd = p[0];
    eim_model *m = NULL;
    er_err err;
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_OK);
    if (!m) return;
    CHECK(write(p[1], "x", 1) == 1);
    uint32_t px[4] = {0};
    int64_t t0 = util_mono_ms();
    CHECK_EQ_INT(fx_classify(m, px, 4, 20000, &err), ER_CLOSED);
    CHECK(util_mono_ms() - t0 < 1000);
    eim_model_stop(m);
    close(p[0]);
    close(p[1]);
    fx_done(&fx);
}

/* A model printing 100 KB per classify: more than a pipe holds, so its output must be read. */
static void test_chatty(void)
{
    eim_fx fx;
    fx_init(&fx, 2, 2);
    fx_set("CHATTY", "100000");
    eim_model *m = fx_start(&fx);
    if (!m) return;
    uint32_t px[4] = {0};
    er_err err;
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(fx_classify(m, px, 4, 10000, &err), ER_OK);
    eim_model_stop(m);
    fx_done(&fx);
}

/* The stop of a model that ignores `ignore`: the signal that ended it and how long it took.
 * grace_ms is the wait between SIGINT, SIGHUP and SIGKILL: short where the model ignores the
 * signal (the wait always runs out, and the test should be quick), long where the model is to
 * obey it, so a loaded machine that takes a while to schedule the stand-in (a Python process)
 * does not turn its SIGINT exit into the SIGHUP one. */
static void check_stop(const char *ignore, int grace_ms, int want_signal, int want_code,
                       int64_t min_ms)
{
    eim_fx fx;
    fx_init(&fx, 2, 2);
    fx_set("IGNORE_SIGNALS", ignore);
    eim_opts o = fx_opts(&fx);
    o.stop_grace_ms = grace_ms;
    eim_model *m = NULL;
    er_err err;
    CHECK_EQ_INT(start(&fx, &o, &m, &err), ER_OK);
    if (!m) return;
    char shm[64];
    snprintf(shm, sizeof shm, "%s", eim_model_get_info(m)->shm_name);
    CHECK(fx_shm_exists(shm));
    int64_t t0 = util_mono_ms();
    int status = eim_model_stop(m);
    int64_t took = util_mono_ms() - t0;
    CHECK(took >= min_ms && took < min_ms + 2000);
    bool ok = want_signal ? WIFSIGNALED(status) && WTERMSIG(status) == want_signal
                          : WIFEXITED(status) && WEXITSTATUS(status) == want_code;
    if (!ok)
        fprintf(stderr, "stop with %s ignored: %s %d after %lld ms\n", *ignore ? ignore : "nothing",
                WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), (long long)took);
    CHECK(ok);
    CHECK(!fx_shm_exists(shm)); /* unlinked by the model, or by the relay after a SIGKILL */
    fx_done(&fx);
}

static void test_stop(void)
{
    check_stop("", 10000, 0, 128 + SIGINT, 0);
    check_stop("INT", 1000, 0, 128 + SIGHUP, 1000);
    check_stop("INT,HUP", 250, SIGKILL, 0, 500);
}

int main(void)
{
    /* as the relay runs: SIGPIPE ignored, the stop signals blocked for sigwait (the model must
     * get neither) */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int fds = fx_open_fds();
    test_exit_at_start();
    test_start_timeout_and_cancel();
    test_model_file();
    test_dies_mid_stream();
    test_hangs();
    test_cancel_classify();
    test_chatty();
    test_stop();
    CHECK_EQ_INT(fx_open_fds(), fds);
    return check_summary();
}
