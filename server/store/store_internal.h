/* store_internal.h: what the files under server/store share and nobody else sees (libpq lives here). */
#ifndef CASETRAIL_STORE_INTERNAL_H
#define CASETRAIL_STORE_INTERNAL_H

#include <libpq-fe.h>

#include "casetrail/store.h"

/* Statements already prepared on one connection, by a hash of their SQL text. */
#define CT_STMT_CACHE 256
struct ct_stmt_cache {
    unsigned long long keys[CT_STMT_CACHE];
    int n;
    bool poisoned; /* the server disagrees with keys[]: drop the connection when released */
};

struct ct_tx {
    PGconn *conn;
    struct ct_stmt_cache *cache; /* the connection's; statements are prepared once per connection */
};

/* Runs a parameterised statement. Returns the result (caller PQclear()s) when it succeeded,
 * or NULL with err filled from the SQLSTATE: unique violation -> CT_E_CONFLICT, lost
 * connection -> CT_E_UNAVAILABLE, anything else CT_E_INTERNAL (detail logged, not returned). */
PGresult *ct_tx_exec(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                     struct ct_err *err);
/* Same with explicit lengths and formats (binary parameters such as hashes). */
PGresult *ct_tx_exec_bin(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                         const int *lengths, const int *formats, struct ct_err *err);

/* Runs a statement whose rows are not needed; returns its rc (err filled on failure). */
ct_rc ct_tx_exec0(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                  struct ct_err *err);

/* Connects with casetrail's session settings (synchronous_commit on, UTC, application_name,
 * connect timeout); NULL or a failed connection when it cannot. */
PGconn *ct_store_connect(const char *database_url);

/* Copies a text column or "" when NULL. */
void ct_store_copy(char *dst, size_t cap, const PGresult *res, int row, int col);

/* Unix microseconds now (CLOCK_REALTIME). */
long long ct_store_now_us(void);
/* Formats Unix microseconds as a timestamptz literal PostgreSQL reads back exactly. */
void ct_store_fmt_ts(long long us, char out[48]);
/* Decodes a bytea in PostgreSQL's text output ("\x..."); false when NULL or malformed. */
bool ct_store_bytea(const PGresult *res, int row, int col, unsigned char *out, size_t len);

/* Advisory lock key shared by event appends and taken exclusively by the digest. */
#define CT_DIGEST_LOCK "7420250002"

/* SQL fragment formatting a timestamptz column as ISO 8601 UTC with milliseconds and Z. */
#define CT_SQL_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* The same with microseconds (API timestamps), and a column as Unix microseconds. */
#define CT_SQL_ISO_US(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define CT_SQL_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

#endif
