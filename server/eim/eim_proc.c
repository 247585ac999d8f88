/* eim_proc.c - the model's process: the socket directory, the spawn (`<model> <socket>` with the
 * relay's environment), what it prints (kept as a tail for error messages), waiting for its
 * socket, reaping, and the stop (SIGINT, SIGHUP, SIGKILL) that removes the directory.
 *
 * The eim__proc belongs to its eim_model's thread. The model runs in its own process group so a
 * stop reaches anything it started; it gets default signal handling and an empty signal mask
 * (the relay blocks its stop signals for sigwait and ignores SIGPIPE, which a child would
 * otherwise inherit), and no descriptor of the relay but the pipe of its output. */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "eim/eim_internal.h"

#define DIR_PREFIX "ei-relay-eim-"
#define SOCK_NAME "runner.sock"
#define SOCKET_POLL_MS 100 /* the runner's poll for the socket */
#define DRAIN_READS 64     /* reads of 4 KiB per drain, so a chatty model cannot hold us */

extern char **environ;

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec */
#else
    (void)pid;
    return -1;
#endif
}

/* The socket directory: in tmp_dir when given, else the first of /dev/shm (when a writable
 * directory), $TMPDIR and /tmp where mkdtemp works and the socket path fits sun_path. */
static er_rc make_dir(eim__proc *p, const char *tmp_dir, er_err *err)
{
    const char *bases[3];
    size_t n = 0;
    struct stat st;
    if (tmp_dir) {
        bases[n++] = tmp_dir;
    } else {
        const char *t = getenv("TMPDIR");
        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
            access("/dev/shm", W_OK | X_OK) == 0)
            bases[n++] = "/dev/shm";
        if (t && t[0]) bases[n++] = t;
        bases[n++] = "/tmp";
    }
    int e = ENAMETOOLONG;
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(p->sock, sizeof p->sock, "%s/" DIR_PREFIX "XXXXXX/" SOCK_NAME, bases[i]);
        if (len < 0 || (size_t)len >= sizeof p->sock) continue;
        snprintf(p->dir, sizeof p->dir, "%s/" DIR_PREFIX "XXXXXX", bases[i]);
        if (!mkdtemp(p->dir)) {
            e = errno;
            p->dir[0] = '\0';
            continue;
        }
        len = snprintf(p->sock, sizeof p->sock, "%s/" SOCK_NAME, p->dir); /* fits: checked */
        return len > 0 ? ER_OK : er_fail(err, ER_INTERNAL, "cannot name the model's socket");
    }
    p->sock[0] = '\0';
    return er_fail(err, ER_IO, "cannot make a directory for the model's socket in %s: %s",
                   bases[n - 1],
                   e == ENAMETOOLONG ? "the socket path would be 108 bytes or more" : strerror(e));
}

/* The model file as an absolute path (malloc'ed into *abs), executable: a file without execute
 * permission gets it when the relay owns it, as the runner chmods the model it is given. */
static er_rc check_model(const char *file, char **abs, er_err *err)
{
    struct stat st;
    if (!file || !file[0]) return er_fail(err, ER_NOTFOUND, "no model file given");
    if (!(*abs = realpath(file, NULL)))
        return er_fail(err, errno == ENOENT ? ER_NOTFOUND : ER_IO, "model file %.150s: %s", file,
                       strerror(errno));
    if (stat(*abs, &st) != 0 || !S_ISREG(st.st_mode))
        return er_fail(err, ER_IO, "model file %.150s is not a regular file", file);
    if (access(*abs, X_OK) == 0) return ER_OK;
    mode_t mode = (st.st_mode & 07777) | S_IXUSR | ((st.st_mode & S_IRGRP) ? S_IXGRP : 0) |
                  ((st.st_mode & S_IROTH) ? S_IXOTH : 0);
    if (st.st_uid != geteuid() || chmod(*abs, mode) != 0)
        return er_fail(err, ER_IO,
                       "model file %.150s is not executable and the relay cannot make it so "
                       "(chmod +x it)",
                       file);
    log_info("eim", "made the model file %s executable", *abs);
    return ER_OK;
}

er_rc eim__proc_spawn(eim__proc *p, const char *model_file, const char *tmp_dir, er_err *err)
{
    static const int reset[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2};
    er_rc rc;
    int pipefd[2] = {-1, -1};
    char *abs = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;
    sigset_t none, dfl;
    memset(p, 0, sizeof *p);
    p->pidfd = p->out_fd = -1;
    if ((rc = check_model(model_file, &abs, err)) || (rc = make_dir(p, tmp_dir, err))) goto fail;
    if (pipe(pipefd) != 0 || fcntl(pipefd[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(pipefd[1], F_SETFD, FD_CLOEXEC) != 0 || fcntl(pipefd[0], F_SETFL, O_NONBLOCK) != 0) {
        rc = er_fail(err, ER_IO, "cannot make a pipe for the model's output: %s", strerror(errno));
        goto fail;
    }
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&dfl, reset[i]);
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    if (!fa_ok || !attr_ok || posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1) ||
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2) ||
        posix_spawn_file_actions_addclosefrom_np(&fa, 3) ||
        posix_spawnattr_setsigmask(&attr, &none) || posix_spawnattr_setsigdefault(&attr, &dfl) ||
        posix_spawnattr_setpgroup(&attr, 0) ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETPGROUP)) {
        rc = er_fail(err, ER_NOMEM, "cannot prepare the model's process");
        goto fail;
    }
    char *argv[] = {abs, p->sock, NULL};
    int e = posix_spawn(&p->pid, abs, &fa, &attr, argv, environ);
    if (e != 0) {
        p->pid = 0;
        rc = er_fail(err, ER_IO, "cannot run the model %.150s: %s", abs, strerror(e));
        goto fail;
    }
    p->pidfd = open_pidfd(p->pid);
    p->out_fd = pipefd[0];
    pipefd[0] = -1;
    rc = ER_OK;
fail:
    if (fa_ok) posix_spawn_file_actions_destroy(&fa);
    if (attr_ok) posix_spawnattr_destroy(&attr);
    if (pipefd[0] >= 0) close(pipefd[0]);
    if (pipefd[1] >= 0) close(pipefd[1]);
    free(abs);
    return rc;
}

static void keep_tail(eim__proc *p, const char *s, size_t n)
{
    if (n >= sizeof p->tail) {
        s += n - sizeof p->tail;
        n = sizeof p->tail;
    }
    size_t keep = sizeof p->tail - n < p->tail_len ? sizeof p->tail - n : p->tail_len;
    memmove(p->tail, p->tail + p->tail_len - keep, keep);
    memcpy(p->tail + keep, s, n);
    p->tail_len = keep + n;
}

void eim__proc_drain(eim__proc *p)
{
    char buf[4096];
    for (int i = 0; i < DRAIN_READS && p->out_fd >= 0; i++) {
        ssize_t n = read(p->out_fd, buf, sizeof buf);
        if (n > 0) {
            keep_tail(p, buf, (size_t)n);
        } else if (n == 0 || errno != EINTR) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            close(p->out_fd); /* end of output (or a broken pipe): nothing more to read */
            p->out_fd = -1;
        }
    }
}

er_rc eim__proc_pause(eim__proc *p, int ms, int cancel_fd)
{
    struct pollfd fds[3];
    nfds_t n = 0;
    if (cancel_fd > 0) fds[n++] = (struct pollfd){.fd = cancel_fd, .events = POLLIN};
    if (p->out_fd >= 0) fds[n++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
    if (p->pidfd >= 0 && !p->reaped) fds[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
    if (poll(fds, n, ms) > 0 && cancel_fd > 0 && fds[0].revents) return ER_CLOSED;
    eim__proc_drain(p);
    return ER_OK;
}

bool eim__proc_reap(eim__proc *p, int wait_ms)
{
    int64_t deadline = util_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
    while (p->pid > 0 && !p->reaped) {
        int st = 0;
        pid_t r = waitpid(p->pid, &st, wait_ms < 0 ? 0 : WNOHANG);
        if (r == p->pid || (r < 0 && errno != EINTR)) { /* ECHILD: reaped elsewhere */
            p->reaped = true;
            p->status = r == p->pid ? st : -1;
            break;
        }
        int64_t left = deadline - util_mono_ms();
        if (r == 0 && left <= 0) break;
        /* without a pidfd nothing wakes us at the exit: look again every 10 ms */
        if (r == 0) eim__proc_pause(p, p->pidfd >= 0 ? (int)left : (left < 10 ? (int)left : 10), 0);
    }
    eim__proc_drain(p);
    return p->reaped;
}

void eim__proc_describe(const eim__proc *p, char *buf, size_t size)
{
    if (!p->reaped || p->status < 0)
        snprintf(buf, size, p->reaped ? "exit status unknown" : "still running");
    else if (WIFEXITED(p->status))
        snprintf(buf, size, "code: %d", WEXITSTATUS(p->status));
    else
        snprintf(buf, size, "signal: %d", WIFSIGNALED(p->status) ? WTERMSIG(p->status) : 0);
}

void eim__proc_tail(const eim__proc *p, char *buf, size_t max)
{
    size_t end = p->tail_len, start, cost = 0, o = 0;
    if (!max) return;
    while (end > 0 &&
           (p->tail[end - 1] == '\n' || p->tail[end - 1] == '\r' || p->tail[end - 1] == ' '))
        end--;
    /* From the end back as far as fits: a newline shows as " / " (3 bytes). */
    for (start = end; start > 0; start--) {
        size_t c = p->tail[start - 1] == '\n' ? 3 : 1;
        if (cost + c + 1 > max) break;
        cost += c;
    }
    while (start < end && ((unsigned char)p->tail[start] & 0xC0) == 0x80)
        start++;                           /* not in the middle of a UTF-8 character */
    for (size_t i = start; i < end; i++) { /* o + 3 < max holds: cost counted it */
        char c = p->tail[i];
        if (c == '\n') {
            memcpy(buf + o, " / ", 3);
            o += 3;
        } else {
            buf[o++] = (unsigned char)c < 0x20 ? ' ' : c;
        }
    }
    buf[o] = '\0';
    if (!o && max > 12) snprintf(buf, max, "(no output)");
}

er_rc eim__proc_wait_socket(eim__proc *p, int64_t deadline_ms, int cancel_fd, er_err *err)
{
    for (;;) {
        struct stat st;
        if (stat(p->sock, &st) == 0) return ER_OK;
        if (eim__proc_reap(p, 0)) {
            char how[40], out[160];
            eim__proc_describe(p, how, sizeof how);
            eim__proc_tail(p, out, sizeof out);
            return er_fail(err, ER_IO, "failed to start the model (%s): %s", how, out);
        }
        int64_t left = deadline_ms - util_mono_ms();
        if (left <= 0) {
            char out[160];
            eim__proc_tail(p, out, sizeof out);
            return er_fail(err, ER_AGAIN, "the model did not open its socket in time: %s", out);
        }
        if (eim__proc_pause(p, left < SOCKET_POLL_MS ? (int)left : SOCKET_POLL_MS, cancel_fd))
            return er_fail(err, ER_CLOSED, "stopping");
    }
}

/* Removes the socket directory and what the model left in it (its socket). */
static void remove_dir(eim__proc *p)
{
    if (!p->dir[0]) return;
    DIR *d = opendir(p->dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    if (d) closedir(d);
    if (rmdir(p->dir) != 0)
        log_warn("eim", "cannot remove the model's directory %s: %s", p->dir, strerror(errno));
    p->dir[0] = '\0';
}

int eim__proc_stop(eim__proc *p, int grace_ms)
{
    static const int sigs[] = {SIGINT, SIGHUP, SIGKILL};
    for (size_t i = 0; p->pid > 0 && i < sizeof sigs / sizeof sigs[0] && !eim__proc_reap(p, 0);
         i++) {
        if (kill(-p->pid, sigs[i]) != 0) kill(p->pid, sigs[i]);
        eim__proc_reap(p, sigs[i] == SIGKILL ? -1 : grace_ms);
    }
    int status = p->pid > 0 ? p->status : -1;
    if (p->pidfd >= 0) close(p->pidfd);
    if (p->out_fd >= 0) close(p->out_fd);
    p->pidfd = p->out_fd = -1;
    remove_dir(p);
    p->pid = 0;
    return status;
}
