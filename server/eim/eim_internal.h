/* eim_internal.h - what the files of the eim module share, and no other module may include:
 * the model's process (eim_proc.c: socket directory, spawn, output capture, stop) and the
 * info's updates (eim_info.c). Names here carry the private prefix eim__. */
#ifndef EI_EIM_EIM_INTERNAL_H
#define EI_EIM_EIM_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "eim/eim.h"

/* The end of what the model printed, kept for error messages. */
#define EIM_OUTPUT_TAIL 4096
/* sun_path's size: a socket path must be shorter. */
#define EIM_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)

/* ---- eim_info.c ---- */

/* The runner's minimum classification score from a thresholds array (see eim_model_info). */
double eim__min_score(const cJSON *thresholds);
/* Renders thresholds, min_score and runner_hello of in from the runner's view of the hello. */
er_rc eim__info_texts(eim_model_info *in, const cJSON *view, er_err *err);
/* Sets key of threshold block block_id to value in the info (ER_NOTFOUND: no such block). */
er_rc eim__info_set_threshold(eim_model_info *in, int block_id, const char *key, double value,
                              er_err *err);

/* ---- eim_proc.c: the model's process ---- */

typedef struct eim__proc {
    pid_t pid;  /* 0 when none */
    int pidfd;  /* readable once the process exited; -1 where the kernel has no pidfd_open */
    int out_fd; /* read end of the model's stdout and stderr (non-blocking); -1 after EOF */
    bool reaped;
    int status;                 /* wait status once reaped */
    char dir[EIM_SUN_PATH];     /* the socket directory, "" when none */
    char sock[EIM_SUN_PATH];    /* dir + "/runner.sock" */
    char tail[EIM_OUTPUT_TAIL]; /* the last bytes the model printed */
    size_t tail_len;
} eim__proc;

/* Makes the socket directory and spawns `<model> <socket>` with the relay's environment, its
 * output into a pipe, default signal handling and its own process group. p is zeroed first;
 * eim__proc_stop undoes a partial start too. */
er_rc eim__proc_spawn(eim__proc *p, const char *model_file, const char *tmp_dir, er_err *err);
/* Waits until the socket exists (checked every 100 ms and whenever the model prints), the model
 * exits (ER_IO with what it printed), deadline_ms (monotonic) passes (ER_AGAIN) or cancel_fd
 * becomes readable (ER_CLOSED). */
er_rc eim__proc_wait_socket(eim__proc *p, int64_t deadline_ms, int cancel_fd, er_err *err);
/* Reads what the model printed so far into the tail; never blocks. */
void eim__proc_drain(eim__proc *p);
/* Waits up to ms for the model to print or exit, then drains; ER_CLOSED when cancel_fd (> 0)
 * became readable. */
er_rc eim__proc_pause(eim__proc *p, int ms, int cancel_fd);
/* Reaps the model if it exited, waiting up to wait_ms; true once reaped. */
bool eim__proc_reap(eim__proc *p, int wait_ms);
/* "exit status N" / "signal N" / "running" for p, into buf. */
void eim__proc_describe(const eim__proc *p, char *buf, size_t size);
/* The last line(s) the model printed, at most max bytes, newlines shown as " / ", into buf. */
void eim__proc_tail(const eim__proc *p, char *buf, size_t max);
/* SIGINT, SIGHUP after grace_ms, SIGKILL after as long again; reaps; closes the pipe; removes
 * the socket directory. Returns the wait status (-1 when there was no process). */
int eim__proc_stop(eim__proc *p, int grace_ms);

#endif
