/* main.c - command-line entry: parse configuration, then run the service (default), print the
 * admin token, export the cache as guid files, or import guid files. Signals are handled here,
 * synchronously. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/relay.h"
#include "auth/auth.h"
#include "config/config.h"
#include "core/log.h"
#include "media/image.h"
#include "sources/sources.h"
#include "tools/guidfiles.h"

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

    er_err err = {{0}};
    relay *r = NULL;
    if (relay_create(cfg, &r, &err)) {
        log_error("main", "cannot start: %s", err.msg);
        return 1;
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
    if (auth_create(cfg, &au, &err)) {
        fprintf(stderr, "ei-relay token: %s\n", err.msg);
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
        return 2;
    }
    er_err err = {{0}};
    store *st = NULL;
    if (relay_open_store(cfg, &st, &err)) {
        fprintf(stderr, "ei-relay: cannot open %s: %s\n", cfg->db_path, err.msg);
        return 1;
    }
    guidfiles_stats stats = {0};
    er_rc rc;
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

int main(int argc, char **argv, char **envp)
{
    config cfg;
    config_cli cli;
    er_err err = {{0}};
    /* the sources module checks the entries of every `sources` value as it is loaded */
    if (config_load(&cfg, argc, argv, envp, sources_check_entries, &cli, &err)) {
        fprintf(stderr, "ei-relay: %s\n", err.msg);
        fprintf(stderr, "ei-relay: see 'ei-relay --help'\n");
        return 2;
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
        config_report_ignored(&cfg);
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
