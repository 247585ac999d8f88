/* serial_source.c - the "serial" source kind (its row: sources_kind_serial): reads Edge Impulse
 * firmware text from a tty ("device", termios raw at "baud", default 115200), a child process's
 * stdout ("command", run by /bin/sh -c, restarted with backoff unless "restart": false) or stdin
 * ("stdin": true), feeds serial_parse and stores every inference through sources_commits (in
 * order, each with its outcome: while the store fails the thread holds them, reads no more from
 * the input - a tty's or pipe's own buffer then pushes back - and retries).
 *
 * On a device, "impulse" (normal, continuous, debug; off = never write) has serial_at speak the
 * AT firmware protocol as edge-impulse-run-impulse does: handshake, AT+CONFIG? (shown as the
 * source's "model"), the start command; `b` at stop, and all again after a reopen. A device that
 * never shows a prompt is only read. Every byte read goes to both the parser and serial_at.
 *
 * One thread per source: open the input, poll it together with the stop pipe (waking for
 * serial_at's paced writes and timeouts), feed, flush after a second of silence, and on end of
 * input (EOF, EIO/ENXIO when a device goes away, child exit) close and reopen with exponential
 * backoff; a device that went away mid-window has its cut-off block dropped, not stored. The
 * parser, serial_at and the fd belong to the thread; the slot is shared with the API. Started
 * and stopped by sources.c. */
#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "sources/serial_at.h"
#include "sources/serial_parse.h"
#include "sources/sources_internal.h"

#define SERIAL_FLUSH_MS 1000     /* silence after which an open block is emitted */
#define SERIAL_KILL_WAIT_MS 2000 /* SIGTERM to SIGKILL for a child at stop */
#define SERIAL_STOP_MS 1000      /* at stop, the wait for a device to answer b */
#define SERIAL_BLOCKED_MS 20     /* retry of a write the tty would not take */

extern char **environ;

typedef enum serial_input { SERIAL_DEVICE, SERIAL_COMMAND, SERIAL_STDIN } serial_input;

/* The "impulse" values: how serial_at starts the impulse, or off (nothing is ever written). */
static const struct {
    const char *name;
    int mode; /* a serial_at_mode, -1 = off */
} impulses[] = {
    {"normal", SERIAL_AT_NORMAL},
    {"continuous", SERIAL_AT_CONTINUOUS},
    {"debug", SERIAL_AT_DEBUG},
    {"off", -1},
};

/* The settings of one source, as parse_settings reads them. */
typedef struct serial_settings {
    serial_input input;
    const char *path; /* device path or command; borrowed from the source's JSON object */
    speed_t speed;
    bool restart; /* command: run again after it exits */
    int impulse;  /* a serial_at_mode, -1 = off (always off for a command or stdin) */
} serial_settings;

/* The counters a serial source keeps besides inferences and reconnects, in the order of the
 * kind's counters table. */
enum { C_BYTES, C_LINES, C_LONG_LINES, C_NOISE_LINES, C_EMPTY_BLOCKS, C_DROPPED, C_IMAGES, C_N };

typedef struct serial_source {
    store *st;
    sources_slot *slot; /* shared with the API, see sources_internal.h */
    int stop_fd;        /* readable once the source must stop */
    serial_input input;
    char *path; /* device path or command (owned) */
    speed_t speed;
    bool restart; /* command: run again after it exits */
    serial_parser *parser;
    sources_commits *commits; /* the inferences on their way to the store */
    serial_at *at;            /* NULL when nothing is to be written (impulse off, command, stdin) */
    bool write_blocked;
    pthread_t thread;
    bool started;
    /* the thread's open input */
    int fd;
    pid_t child;
} serial_source;

static const struct {
    long baud;
    speed_t speed;
} baud_rates[] = {{1200, B1200},       {2400, B2400},      {4800, B4800},     {9600, B9600},
                  {19200, B19200},     {38400, B38400},    {57600, B57600},   {115200, B115200},
                  {230400, B230400},   {460800, B460800},  {500000, B500000}, {921600, B921600},
                  {1000000, B1000000}, {2000000, B2000000}};

/* ---- settings ---- */

static er_rc parse_settings(const cJSON *conf, const char *name, serial_settings *s, er_err *err)
{
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(conf, "device");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(conf, "command");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(conf, "stdin");
    const cJSON *baud = cJSON_GetObjectItemCaseSensitive(conf, "baud");
    const cJSON *restart = cJSON_GetObjectItemCaseSensitive(conf, "restart");
    int given = (dev != NULL) + (cmd != NULL) + (in != NULL && !cJSON_IsFalse(in));
    if (given != 1)
        return er_fail(err, ER_CONFIG,
                       "sources \"%.40s\": give exactly one of \"device\", \"command\" or "
                       "\"stdin\": true",
                       name);
    if (dev && (!cJSON_IsString(dev) || !dev->valuestring[0]))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".device: expected a tty path", name);
    if (cmd && (!cJSON_IsString(cmd) || !cmd->valuestring[0]))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".command: expected a shell command", name);
    if (in && !cJSON_IsBool(in))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".stdin: expected true", name);
    if (restart && !cJSON_IsBool(restart))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".restart: expected true or false", name);
    const cJSON *imp = cJSON_GetObjectItemCaseSensitive(conf, "impulse");
    s->impulse = SERIAL_AT_NORMAL;
    if (imp) {
        bool found = false;
        for (size_t i = 0; cJSON_IsString(imp) && i < sizeof impulses / sizeof impulses[0]; i++) {
            if (strcmp(imp->valuestring, impulses[i].name) == 0) {
                s->impulse = impulses[i].mode;
                found = true;
            }
        }
        if (!found)
            return er_fail(err, ER_CONFIG,
                           "sources \"%.40s\".impulse: expected \"normal\", \"continuous\", "
                           "\"debug\" or \"off\"",
                           name);
        if (!dev && s->impulse >= 0)
            return er_fail(err, ER_CONFIG,
                           "sources \"%.40s\".impulse: only a \"device\" is asked to run the "
                           "impulse (a command or stdin is only read): give \"off\" or leave it "
                           "out",
                           name);
    }
    if (!dev) s->impulse = -1;
    s->restart = !cJSON_IsFalse(restart);
    s->speed = B115200;
    if (baud) {
        bool found = false;
        for (size_t i = 0; cJSON_IsNumber(baud) && i < sizeof baud_rates / sizeof baud_rates[0];
             i++) {
            if ((double)baud_rates[i].baud == baud->valuedouble) {
                s->speed = baud_rates[i].speed;
                found = true;
            }
        }
        if (!found)
            return er_fail(err, ER_CONFIG,
                           "sources \"%.40s\".baud: not a supported rate (1200, 2400, 4800, "
                           "9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 921600, "
                           "1000000, 2000000)",
                           name);
    }
    s->input = dev ? SERIAL_DEVICE : cmd ? SERIAL_COMMAND : SERIAL_STDIN;
    s->path = dev ? dev->valuestring : cmd ? cmd->valuestring : NULL;
    return ER_OK;
}

static er_rc serial_validate(const cJSON *conf, const char *name, er_err *err)
{
    serial_settings s;
    return parse_settings(conf, name, &s, err);
}

/* ---- the input ---- */

static er_rc open_device(serial_source *s, er_err *err)
{
    int fd = open(s->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return er_fail(err, ER_IO, "cannot open %s: %s", s->path, strerror(errno));
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        er_fail(err, ER_IO, "%s is not a tty: %s", s->path, strerror(errno));
        close(fd);
        return ER_IO;
    }
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    cfsetispeed(&t, s->speed);
    cfsetospeed(&t, s->speed);
    if (tcsetattr(fd, TCSANOW, &t) != 0) {
        er_fail(err, ER_IO, "cannot set %s to raw mode: %s", s->path, strerror(errno));
        close(fd);
        return ER_IO;
    }
    int dtr = TIOCM_DTR; /* some boards print nothing until DTR; a pty has none: ignored */
    (void)ioctl(fd, TIOCMBIS, &dtr);
    s->fd = fd;
    return ER_OK;
}

static er_rc open_command(serial_source *s, er_err *err)
{
    er_rc rc = ER_IO;
    int p[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;
    /* the relay blocks these for its sigwait: the child gets them back, so SIGTERM ends it */
    static const int reset[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2};
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&dfl, reset[i]);
    if (pipe(p) != 0) {
        rc = er_fail(err, ER_IO, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    if (fcntl(p[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
        rc = er_fail(err, ER_IO, "cannot set up the pipe: %s", strerror(errno));
        goto fail;
    }
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    if (!fa_ok || !attr_ok || posix_spawn_file_actions_adddup2(&fa, p[1], 1) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawnattr_setsigmask(&attr, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &dfl) != 0 ||
        /* its own process group, so stop can signal the shell and what it started */
        posix_spawnattr_setpgroup(&attr, 0) != 0 ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETPGROUP) != 0) {
        rc = er_fail(err, ER_NOMEM, "cannot prepare the command");
        goto fail;
    }
    char *argv[] = {"sh", "-c", s->path, NULL};
    int e = posix_spawn(&s->child, "/bin/sh", &fa, &attr, argv, environ);
    if (e != 0) {
        s->child = 0;
        rc = er_fail(err, ER_IO, "cannot run \"%.80s\": %s", s->path, strerror(e));
        goto fail;
    }
    s->fd = p[0];
    p[0] = -1;
    rc = ER_OK;
fail:
    if (fa_ok) posix_spawn_file_actions_destroy(&fa);
    if (attr_ok) posix_spawnattr_destroy(&attr);
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    return rc;
}

static er_rc open_input(serial_source *s, er_err *err)
{
    switch (s->input) {
    case SERIAL_DEVICE:
        return open_device(s, err);
    case SERIAL_COMMAND:
        return open_command(s, err);
    default:
        s->fd = dup(0);
        if (s->fd < 0) return er_fail(err, ER_IO, "cannot use stdin: %s", strerror(errno));
        return ER_OK;
    }
}

/* Reaps the child; when stopping it is asked to end (SIGTERM, then SIGKILL). */
static void close_input(serial_source *s, bool stopping)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    if (s->child <= 0) return;
    int status = 0;
    if (stopping) kill(-s->child, SIGTERM);
    for (int waited = 0; waitpid(s->child, &status, WNOHANG) == 0; waited += 20) {
        if (waited >= SERIAL_KILL_WAIT_MS) {
            kill(-s->child, SIGKILL);
            waitpid(s->child, &status, 0);
            break;
        }
        usleep(20 * 1000);
    }
    if (!stopping) {
        if (WIFEXITED(status))
            log_info("sources", "source \"%s\": command exited with status %d", s->slot->st.name,
                     WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            log_info("sources", "source \"%s\": command ended by signal %d", s->slot->st.name,
                     WTERMSIG(status));
    }
    s->child = 0;
}

/* ---- parsing ---- */

static void emit(void *arg, inference *inf)
{
    serial_source *s = arg;
    sources__commits_add(s->commits, inf); /* the read loop waits for it before reading on */
}

static void publish_counters(serial_source *s)
{
    serial_parser_counters ps;
    serial_parser_counters_get(s->parser, &ps);
    pthread_mutex_lock(&s->slot->mu);
    sources_status *st = &s->slot->st;
    st->inferences = ps.inferences;
    st->counters[C_BYTES] = ps.bytes;
    st->counters[C_LINES] = ps.lines;
    st->counters[C_LONG_LINES] = ps.long_lines;
    st->counters[C_NOISE_LINES] = ps.noise_lines;
    st->counters[C_EMPTY_BLOCKS] = ps.empty_blocks;
    st->counters[C_DROPPED] = ps.dropped;
    st->counters[C_IMAGES] = ps.images;
    pthread_mutex_unlock(&s->slot->mu);
}

/* ---- the AT firmware ---- */

/* What serial_at reports, on the source's thread: logged, and the configuration kept as the
 * source's model. A device that only prints is no error. */
static void at_event(void *arg, serial_at_event ev, const char *text)
{
    serial_source *s = arg;
    const char *name = s->slot->st.name;
    char *model = NULL;
    switch (ev) {
    case SERIAL_AT_EV_PROMPT:
        log_info("sources", "source \"%s\": %s answered at its AT prompt", name, s->path);
        break;
    case SERIAL_AT_EV_CONFIG:
        model = serial_at_config_json(s->at);
        log_info("sources", "source \"%s\": device %s", name, model ? model : "(out of memory)");
        pthread_mutex_lock(&s->slot->mu);
        free(s->slot->model_info);
        s->slot->model_info = model;
        pthread_mutex_unlock(&s->slot->mu);
        break;
    case SERIAL_AT_EV_STARTED:
        log_info("sources", "source \"%s\": impulse started (%s)", name, text);
        break;
    case SERIAL_AT_EV_REFUSED:
        log_warn("sources", "source \"%s\": the device refused: %s", name, text);
        sources_slot_state(s->slot, "running", "the device refused: %s", text);
        break;
    case SERIAL_AT_EV_NO_PROMPT:
        log_info("sources", "source \"%s\": %s", name, text);
        break;
    case SERIAL_AT_EV_LEFT:
        log_warn("sources", "source \"%s\": the device is back at its prompt: starting again",
                 name);
        break;
    default:
        log_info("sources", "source \"%s\": impulse stop: %s", name, text);
        break;
    }
}

/* Writes the piece serial_at has due now, if any; a full tty is tried again shortly. */
static void at_write(serial_source *s, int64_t now)
{
    const uint8_t *d = NULL;
    size_t n = serial_at_output(s->at, now, &d);
    ssize_t w;
    s->write_blocked = false;
    if (n == 0) return;
    do {
        w = write(s->fd, d, n);
    } while (w < 0 && errno == EINTR);
    if (w > 0)
        serial_at_wrote(s->at, (size_t)w, now);
    else
        s->write_blocked = true; /* EAGAIN; a device gone shows on the next read */
}

/* Milliseconds until serial_at's next deadline or `other` (an absolute time, INT64_MAX none),
 * for poll; -1 = none. */
static int wait_ms(const serial_source *s, int64_t now, int64_t other)
{
    int64_t wake = other;
    if (s->at && serial_at_deadline(s->at) < wake) wake = serial_at_deadline(s->at);
    if (wake == INT64_MAX) return -1;
    int64_t ms = wake - now;
    if (s->write_blocked && ms < SERIAL_BLOCKED_MS) ms = SERIAL_BLOCKED_MS;
    return ms < 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Device bytes: to the parser (results) and to serial_at (replies). */
static void feed(serial_source *s, const uint8_t *buf, size_t n)
{
    serial_parser_feed(s->parser, buf, n, emit, s);
    if (s->at) serial_at_feed(s->at, buf, n, util_mono_ms());
    publish_counters(s);
}

/* At stop, when something was started: b, then a bounded wait for the device to stop; what it
 * prints meanwhile is still read. */
static void at_stop(serial_source *s)
{
    int64_t now = util_mono_ms(), until = now + SERIAL_STOP_MS + 100;
    uint8_t buf[1024];
    serial_at_stop(s->at, now);
    while (serial_at_state_get(s->at) == SERIAL_AT_STOPPING && now < until) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        at_write(s, now);
        int n = poll(&p, 1, wait_ms(s, now, until));
        if (n > 0) {
            ssize_t r = read(s->fd, buf, sizeof buf);
            if (r > 0)
                feed(s, buf, (size_t)r);
            else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                break; /* the device is gone: nothing to wait for */
        }
        now = util_mono_ms();
        serial_at_tick(s->at, now);
    }
}

/* Reads until the input ends or stop. Returns true if stopping; *why says how it ended, *gone
 * whether a device went away (its cut-off block is then dropped). */
static bool read_loop(serial_source *s, char *why, size_t why_len, bool *gone)
{
    uint8_t buf[4096];
    bool pending = false; /* bytes fed since the last flush */
    int64_t last_rx = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->stop_fd, .events = POLLIN},
                              {.fd = s->fd, .events = POLLIN}};
        int64_t now = util_mono_ms();
        if (s->at) {
            serial_at_tick(s->at, now);
            at_write(s, now);
        }
        if (pending && now - last_rx >= SERIAL_FLUSH_MS) { /* silence: emit the open block */
            serial_parser_flush(s->parser, emit, s);
            publish_counters(s);
            pending = false;
            if (sources__commits_drain(s->commits, s->stop_fd)) return true;
        }
        int n = poll(p, 2, wait_ms(s, now, pending ? last_rx + SERIAL_FLUSH_MS : INT64_MAX));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(why, why_len, "poll failed: %s", strerror(errno));
            return false;
        }
        if (p[0].revents) return true;
        if (n == 0) continue;
        ssize_t r = read(s->fd, buf, sizeof buf);
        if (r > 0) {
            feed(s, buf, (size_t)r);
            /* back-pressure: nothing more is read while the store has not taken them */
            if (sources__commits_drain(s->commits, s->stop_fd)) return true;
            pending = true;
            last_rx = util_mono_ms(); /* after the wait: it was no silence of the device */
            continue;
        }
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        *gone = s->input == SERIAL_DEVICE;
        if (r == 0)
            snprintf(why, why_len, "%s%s: end of input",
                     s->input == SERIAL_DEVICE    ? ""
                     : s->input == SERIAL_COMMAND ? "command "
                                                  : "",
                     s->input == SERIAL_STDIN ? "stdin" : s->path);
        else
            snprintf(why, why_len, "%s: %s", s->input == SERIAL_STDIN ? "stdin" : s->path,
                     errno == EIO || errno == ENXIO ? "device gone" : strerror(errno));
        return false;
    }
}

static void *serial_main(void *arg)
{
    serial_source *s = arg;
    const char *name = s->slot->st.name;
    util_thread_name("eir-s:", name);
    int64_t backoff = SOURCES_BACKOFF_MIN_MS;
    bool first = true;
    for (;;) {
        er_err err = {{0}};
        if (!first) sources_slot_attempt(s->slot);
        first = false;
        sources_slot_state(s->slot, "starting", NULL);
        if (open_input(s, &err) != ER_OK) {
            log_warn("sources", "source \"%s\": %s (retrying in %lld ms)", name, err.msg,
                     (long long)backoff);
            sources_slot_state(s->slot, "backoff", "%s", err.msg);
        } else {
            sources_slot_state(s->slot, "running", NULL);
            log_info("sources", "source \"%s\": reading %s", name,
                     s->input == SERIAL_STDIN ? "stdin" : s->path);
            if (s->at) serial_at_start(s->at, util_mono_ms()); /* a (re)opened device */
            uint64_t before = 0;
            serial_parser_counters ps;
            serial_parser_counters_get(s->parser, &ps);
            before = ps.bytes;
            char why[SOURCES_ERROR_MAX] = "";
            bool gone = false;
            bool stopping = read_loop(s, why, sizeof why, &gone);
            if (stopping && s->at) at_stop(s);
            if (gone)
                serial_parser_abort(s->parser); /* a window cut off: stored whole or not at all */
            else
                serial_parser_finish(s->parser, emit, s); /* keeps the stream's last block */
            /* what the input gave is stored before it is reopened; at stop, for a bounded time */
            if (!stopping) stopping = sources__commits_finish(s->commits, s->stop_fd, -1);
            if (stopping) sources__commits_finish(s->commits, -1, SOURCES_STOP_COMMIT_MS);
            publish_counters(s);
            close_input(s, stopping);
            if (stopping) break;
            serial_parser_counters_get(s->parser, &ps);
            if (ps.bytes > before) backoff = SOURCES_BACKOFF_MIN_MS; /* it worked for a while */
            if (s->input == SERIAL_STDIN || (s->input == SERIAL_COMMAND && !s->restart)) {
                log_info("sources", "source \"%s\": %s; stopped", name, why);
                sources_slot_state(s->slot, "stopped", "%s", why);
                break;
            }
            log_warn("sources", "source \"%s\": %s (reopening in %lld ms)", name, why,
                     (long long)backoff);
            sources_slot_state(s->slot, "backoff", "%s", why);
        }
        sources_slot_backoff(s->slot, backoff);
        if (sources__wait_stop(s->stop_fd, (int)backoff)) break;
        backoff = sources_backoff_next(backoff);
    }
    pthread_mutex_lock(&s->slot->mu);
    if (strcmp(s->slot->st.state, "stopped") != 0) s->slot->st.state = "stopped";
    pthread_mutex_unlock(&s->slot->mu);
    return NULL;
}

static void serial_destroy(void *source);

static er_rc serial_create(const cJSON *conf, const sources_env *env, sources_slot *slot,
                           void **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    serial_settings set;
    serial_source *s = calloc(1, sizeof *s);
    if (!s) goto fail;
    s->st = env->st;
    s->slot = slot;
    s->stop_fd = env->stop_fd;
    s->fd = -1;
    if ((rc = parse_settings(conf, slot->st.name, &set, err))) goto fail;
    s->input = set.input;
    s->speed = set.speed;
    s->restart = set.restart;
    if (set.impulse >= 0) {
        serial_at_opts ao = {.mode = (serial_at_mode)set.impulse,
                             .stop_ms = SERIAL_STOP_MS,
                             .event = at_event,
                             .arg = s};
        if ((rc = serial_at_create(&ao, &s->at, err))) goto fail;
    }
    if (set.path && !(s->path = strdup(set.path))) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    serial_parser_opts po = {.device = env->device, .source = slot->st.name};
    rc = serial_parser_create(&po, &s->parser, err);
    if (rc) goto fail;
    if ((rc = sources__commits_create(s->st, slot, &s->commits))) {
        er_fail(err, rc, "source \"%s\": out of resources", slot->st.name);
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, serial_main, s) != 0) {
        rc = er_fail(err, ER_INTERNAL, "cannot start the thread of source \"%s\"", slot->st.name);
        goto fail;
    }
    s->started = true;
    *out = s;
    return ER_OK;
fail:
    serial_destroy(s);
    return rc;
}

/* Joins the thread (sources.c has made the stop pipe readable) and frees. */
static void serial_destroy(void *source)
{
    serial_source *s = source;
    if (!s) return;
    if (s->started) pthread_join(s->thread, NULL);
    sources__commits_destroy(s->commits);
    serial_parser_destroy(s->parser);
    serial_at_destroy(s->at);
    free(s->path);
    free(s);
}

static const sources_counter counters[C_N] = {
    [C_BYTES] = {"bytes", "Bytes read by a serial source."},
    [C_LINES] = {"lines", "Lines read by a serial source."},
    [C_LONG_LINES] = {"long_lines", "Over-long lines a serial source discarded."},
    [C_NOISE_LINES] =
        {"noise_lines",
         "Lines of a serial source that belonged to no inference (banners, garbage)."},
    [C_EMPTY_BLOCKS] = {"empty_blocks",
                        "Inference headers of a serial source with no result after them."},
    [C_DROPPED] = {"dropped", "Results of a serial source lost to limits or lack of memory."},
    [C_IMAGES] = {"images", "Debug snapshots (Framebuffer JPEGs) a serial source stored."},
};

const sources_kind sources_kind_serial = {
    .name = "serial",
    .validate = serial_validate,
    .create = serial_create,
    .cancel = NULL, /* a thread: nothing on the loop */
    .destroy = serial_destroy,
    .counters = counters,
    .n_counters = C_N,
    .model = true, /* the device's AT+CONFIG? facts */
};
