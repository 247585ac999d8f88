/* schema_extra.h - schema migrations compiled into the store's own sources (see schema_002.c for
 * why), applied after the ones embedded from schema/ as if they were one list in version order. */
#ifndef EI_STORE_SCHEMA_EXTRA_H
#define EI_STORE_SCHEMA_EXTRA_H

#include <stddef.h>

#include "store/migrations.h"

extern const store_migration store_migrations_extra[];
extern const size_t store_migrations_extra_count;

#endif
