/* main.c - command-line entry: parse configuration, then run the service (default), print the
 * admin token, export the cache as guid files, or import guid files; or, before any of that,
 * greengrass-setup (its own options: greengrass/greengrass.h). Signals are handled here,
 * synchronously.
 *
 * Exit codes (what a supervisor reads: systemd's RestartPreventExitStatus=2, Greengrass):
 *   0   clean stop (SIGTERM, SIGINT)
 *   2   bad configuration, wherever it is found (the loader, or a module at start: auth,
 *       sources, HTTP...), logged in one line naming the setting; restarting cannot help
 *   75  a restart command arrived over MQTT (RELAY_EXIT_RESTART)
 *   1   any other failure to start or to do the job */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/relay.h"
#include "auth/auth.h"
#include "config/config.h"
#include "core/json_alloc.h"
#include "core/log.h"
#include "greengrass/greengrass.h"
#include "media/image.h"
#include "sources/sources.h"
#include "tools/guidfiles.h"

#define EXIT_CONFIG 2

/* The exit code of a failure: configuration errors are told apart. */
static int exit_code(er_rc rc)
{
    return rc == ER_CONFIG ? EXIT_CONFIG : 1;
}

static int run_service(const config *cfg)
{
    /* Block the stop signals before any thread exists so only sigwait below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* A network service parsing untrusted input has no business holding root: the package runs
     * it as its own user and Greengrass as the component user. Allowed on purpose only. */
    if (geteuid() == 0 && !cfg->allow_root) {
        log_error("main", "refusing to run as root: run ei-relay as an unprivileged user (the "
                          "package's ei-relay user), or allow it with allow_root / --allow-root "
                          "/ EI_RELAY_ALLOW_ROOT=true");
        return EXIT_CONFIG;
    }
    er_err err = {{0}};
    relay *r = NULL;
    er_rc rc = relay_create(cfg, &r, &err);
    if (rc) {
        log_error("main", "cannot start: %s%s", rc == ER_CONFIG ? "configuration: " : "", err.msg);
        return exit_code(rc);
    }
    int sig = 0;
    do {
        sigwait(&stop, &sig);
        if (sig == SIGHUP)
            log_info("main", "SIGHUP: configuration reload is not supported; "
                             "restart the service to apply changes");
    } while (sig == SIGHUP);
    log_info("main", "signal %d: stopping", sig);
    /* a restart command over MQTT: exit with the code the supervisor restarts on */
    int code = relay_restart_requested(r) ? RELAY_EXIT_RESTART : 0;
    relay_destroy(r);
    log_info("main", "stopped");
    return code;
}

/* `ei-relay token`: the admin token the service accepts with this configuration, alone on
 * stdout so that TOKEN=$(ei-relay token) works. Made exactly as the service makes it (auth_create
 * generates the file when none is configured), so it works before the first start too. */
static int run_token(const config *cfg)
{
    er_err err = {{0}};
    auth *au = NULL;
    int status = 1;
    er_rc rc = auth_create(cfg, &au, &err);
    if (rc) {
        fprintf(stderr, "ei-relay token: %s\n", err.msg);
        status = exit_code(rc);
        goto done;
    }
    const char *token = auth_admin_token(au);
    if (!token) {
        fprintf(stderr, "ei-relay token: no token has the admin role (see 'tokens' and "
                        "'token_file')\n");
        goto done;
    }
    printf("%s\n", token);
    status = fflush(stdout) == 0 ? 0 : 1;
done:
    auth_destroy(au);
    return status;
}

static int run_tool(const config *cfg, const config_cli *cli)
{
    if (!cli->dir) {
        fprintf(stderr, "ei-relay %s: --dir DIR is required\n", cli->command);
        return EXIT_CONFIG;
    }
    er_err err = {{0}};
    store *st = NULL;
    er_rc rc = relay_open_store(cfg, &st, &err);
    if (rc) {
        fprintf(stderr, "ei-relay: cannot open %s: %s\n", cfg->db_path, err.msg);
        return exit_code(rc);
    }
    guidfiles_stats stats = {0};
    if (strcmp(cli->command, "export") == 0)
        rc = guidfiles_export(st, cli->dir, cfg, &stats, &err);
    else
        rc = guidfiles_import(st, cli->dir, cfg, &stats, &err);
    store_destroy(st);
    printf("%s: %lld written, %lld skipped, %lld failed\n", cli->command, (long long)stats.done,
           (long long)stats.skipped, (long long)stats.failed);
    if (rc) fprintf(stderr, "ei-relay %s: %s\n", cli->command, err.msg);
    return rc ? 1 : 0;
}

/* `ei-relay greengrass-setup ...` (argv[0] is "greengrass-setup"): one line on stdout per value
 * found, or one line on stderr saying what is wrong. */
static int run_greengrass_setup(int argc, char **argv, char **envp)
{
    greengrass_opts o;
    er_err err = {{0}};
    er_rc rc = greengrass_parse_args(argc, argv, envp, &o, &err);
    if (rc) {
        fprintf(stderr, "ei-relay greengrass-setup: %s (see 'ei-relay greengrass-setup --help')\n",
                err.msg);
        return exit_code(rc);
    }
    if (o.help) {
        greengrass_usage(stdout);
        return 0;
    }
    rc = greengrass_setup(&o, stdout, &err);
    if (rc) fprintf(stderr, "ei-relay greengrass-setup: %s\n", err.msg);
    return rc ? exit_code(rc) : 0;
}

int main(int argc, char **argv, char **envp)
{
    /* Everything this process creates (the database and its -wal/-shm, which SQLite creates
     * 0644 & ~umask, the token file, exported files, new directories) is for its own user only,
     * whatever umask the shell, systemd or Greengrass handed down. Files that another user must
     * read (greengrass-setup's) get their mode explicitly with fchmod. */
    umask(077);
    /* cJSON running out of memory is told from malformed JSON (ingest answers 500, not 400) */
    json_alloc_install();
    /* a command with options of its own, which are no settings */
    if (argc > 1 && strcmp(argv[1], "greengrass-setup") == 0)
        return run_greengrass_setup(argc - 1, argv + 1, envp);
    config cfg;
    config_cli cli;
    er_err err = {{0}};
    /* the sources module checks the entries of every `sources` value as it is loaded */
    if (config_load(&cfg, argc, argv, envp, sources_check_entries, &cli, &err)) {
        fprintf(stderr, "ei-relay: %s (see 'ei-relay --help')\n", err.msg);
        return EXIT_CONFIG;
    }
    int status = 0;
    if (cli.help) {
        config_usage(stdout);
    } else if (cli.version) {
        printf("ei-relay %s\n", EI_RELAY_VERSION);
    } else if (cli.print_config) {
        config_print(&cfg, stdout);
    } else if (strcmp(cli.command, "token") == 0) {
        /* only what went wrong on stderr: the answer is meant for $(...) */
        log_set_level(LOG_WARN);
        status = run_token(&cfg);
    } else {
        log_set_level((log_level)cfg.log_level);
        config_report(&cfg);
        if (media_init(argv[0])) {
            fprintf(stderr, "ei-relay: cannot start libvips\n");
            status = 1;
        } else {
            status = strcmp(cli.command, "run") == 0 ? run_service(&cfg) : run_tool(&cfg, &cli);
            media_shutdown();
        }
    }
    config_free(&cfg);
    return status;
}
