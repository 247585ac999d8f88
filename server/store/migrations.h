/* migrations.h - the schema migrations embedded from schema/NNN_*.sql at build time.
 * Applied in ascending version order; PRAGMA user_version records the last applied. */
#ifndef EI_STORE_MIGRATIONS_H
#define EI_STORE_MIGRATIONS_H

#include <stddef.h>

typedef struct store_migration {
    int version;
    const char *name; /* file name, for logs */
    const char *sql;
} store_migration;

extern const store_migration store_migrations[];
extern const size_t store_migrations_count;

#endif
