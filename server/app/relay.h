/* relay.h - assembles the running service from its modules: store, auth, HTTP server and
 * sources (demo), in dependency order, and tears them down in reverse. main.c stays thin and
 * in-process tests can run a whole relay. */
#ifndef EI_APP_RELAY_H
#define EI_APP_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/rc.h"
#include "store/store.h"

typedef struct relay relay;

/* cfg is borrowed and must outlive the relay. media_init must have run. */
er_rc relay_create(const config *cfg, relay **out, er_err *err);
uint16_t relay_http_port(const relay *r);
store *relay_store(relay *r);
const char *relay_device(const relay *r);
/* True once a restart command arrived over MQTT (the forwarder also sent SIGTERM); main may
 * exit with a code its supervisor restarts on. */
bool relay_restart_requested(const relay *r);
/* main's exit status after a restart command (EX_TEMPFAIL): non-zero, so Greengrass and
 * systemd (Restart=on-failure) start ei-relay again. */
#define RELAY_EXIT_RESTART 75
void relay_destroy(relay *r);

/* Opens only the store (for export/import), with the same options the service uses, except
 * that a corrupt database is refused rather than moved aside. */
er_rc relay_open_store(const config *cfg, store **out, er_err *err);

#endif
