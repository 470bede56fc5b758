/* store_internal.h: what the files under server/store share and nobody else sees (libpq lives here). */
#ifndef CASETRAIL_STORE_INTERNAL_H
#define CASETRAIL_STORE_INTERNAL_H

#include <libpq-fe.h>

#include "casetrail/audit.h"
#include "casetrail/json.h"
#include "casetrail/store.h"

/* Statements already prepared on one connection, by a hash of their SQL text. */
#define CT_STMT_CACHE 256
struct ct_stmt_cache {
    unsigned long long keys[CT_STMT_CACHE];
    int n;
    bool poisoned; /* the server disagrees with keys[]: drop the connection when released */
};

#define CT_TX_TOUCHED 256 /* a group commit of 64 webhooks, and then some */

struct ct_tx {
    PGconn *conn;
    struct ct_stmt_cache *cache; /* the connection's; statements are prepared once per connection */
    int wait_ms;                 /* longest wait for one answer; 0 waits forever */
    bool timed_out;              /* an answer did not come in time: the connection is dropped */
    /* BEGIN is not sent on its own: it goes ahead of the transaction's first statement in one
     * round trip (pool.c), and a transaction that sends nothing sends no BEGIN or COMMIT */
    bool begin_pending;
    bool finishing;   /* the transaction helper's final flush runs: COMMIT may go with it */
    bool commit_next; /* the next statement is the last: its COMMIT goes in the same trip */
    bool committed;   /* ... and that COMMIT succeeded */
    /* tickets whose chains this transaction appended to, told to the pool's on_commit hook
     * (live updates) once COMMIT succeeded; more than CT_TX_TOUCHED sets overflow */
    long long touched[CT_TX_TOUCHED];
    int ntouched;
    bool touched_overflow;
    /* a batched transaction's held-back writes (store_defer.c); NULL writes at once */
    struct ct_defer *defer;
    /* a batched group's contacts and live tickets, looked up together (store_preload.c) */
    struct ct_preload *preload;
};

/* ---- set-based writes of a batched transaction (store_defer.c) ----
 * Message rows and chain events are held in memory and written by ct_defer_flush, which
 * ct_store_in_tx_batched runs before COMMIT and which any statement that reads messages or
 * events first runs itself (a barrier). Chains are indexes into the defer's list. */
struct ct_defer;
struct ct_defer *ct_defer_new(void);
void ct_defer_free(struct ct_defer *d);
/* The chain's index, or -1 when this transaction has not locked it yet. */
int ct_defer_chain_find(const struct ct_defer *d, bool ticket, long long id);
/* Remembers a chain just locked with its head; its index, -1 on OOM. */
int ct_defer_chain_add(struct ct_defer *d, bool ticket, long long id, long long last_seq,
                       const unsigned char head[CT_HASH_LEN]);
bool ct_defer_salt_find(const struct ct_defer *d, const char *scope,
                        unsigned char salt[CT_SALT_LEN]);
/* Remembers scope's salt (nothing when it is remembered already). */
void ct_defer_salt_add(struct ct_defer *d, const char *scope,
                       const unsigned char salt[CT_SALT_LEN]);
/* The complaint rule the group's fetch found for text (rule_id 0: none); false when the text
 * was not fetched. */
bool ct_defer_rule_find(const struct ct_defer *d, const char *text, long long *rule_id,
                        char pattern[1024]);
void ct_defer_rule_add(struct ct_defer *d, const char *text, long long rule_id,
                       const char *pattern);
/* Whether a held message has this wamid. */
bool ct_defer_has_wamid(const struct ct_defer *d, const char *wamid);
/* Holds a copy of m; *placeholder is its id inside this transaction's event data (negative),
 * replaced by the real id (and payload_sha256 by the stored payload's) when it is written. */
ct_rc ct_defer_message(struct ct_defer *d, const struct ct_message_new *m, long long *placeholder,
                       struct ct_err *err);
/* Holds an event on chain with its canonical digests and texts JSON (both taken over, even on
 * failure); *seq_out gets its seq. The hash is computed at flush, in append order. */
ct_rc ct_defer_event(struct ct_defer *d, int chain, const struct ct_event_new *ev, char *digests,
                     char *texts, long long *seq_out, struct ct_err *err);
/* Writes whatever is held (messages, then events, texts and heads); nothing when tx->defer is
 * NULL or empty. */
ct_rc ct_defer_flush(struct ct_tx *tx, struct ct_err *err);

/* ---- a batched group's lookups, made together (store_preload.c) ----
 * ct_preload_contact and ct_preload_live answer from what ct_store_group_open found (true)
 * or say it was not asked (false: run the statement). Every store function that changes a
 * contact or a ticket tells the preload first, so no answer outlives what it describes. */
struct ct_preload;
void ct_preload_free(struct ct_preload *pl);
bool ct_preload_contact(const struct ct_tx *tx, const char *phone_number_id, bool by_user,
                        const char *value, struct ct_contact_row *out, bool *found);
bool ct_preload_live(const struct ct_tx *tx, long long contact_id, const char *wamid,
                     struct ct_ticket_ref *out, bool *known);
/* The contact's row changed (ids, name, merged): it is looked up again. */
void ct_preload_forget_contact(struct ct_tx *tx, long long contact_id);
/* Which ticket is the contact's live one may have changed (one created, tickets merged). */
void ct_preload_forget_live(struct ct_tx *tx, long long contact_id);
/* A contact row was added: ids that were nobody's may now be someone's. */
void ct_preload_forget_absent(struct ct_tx *tx);
/* The ticket changed (status, assignee, escalation, priority). */
void ct_preload_forget_ticket(struct ct_tx *tx, long long ticket_id);
/* A message with wamid was stored by this transaction. */
void ct_preload_saw_wamid(struct ct_tx *tx, const char *wamid);

/* The columns of a struct ct_contact_row, unqualified; ct_store_contact_from_row reads them
 * from column off of row. */
#define CT_CONTACT_COLS                                                                       \
    "id, coalesce(wa_id, ''), coalesce(user_id, ''), coalesce(merged_into, 0), name IS NULL,"  \
    " CASE WHEN octet_length(name) < 256 THEN name END"
void ct_store_contact_from_row(const PGresult *res, int row, int off,
                               struct ct_contact_row *out);
/* A struct ct_ticket_ref from row's columns off.. (id, status, assignee or 0, escalation
 * level, priority, complaint_escalated). */
void ct_store_ticket_ref_from_row(const PGresult *res, int row, int off,
                                  struct ct_ticket_ref *out);
/* In a batched transaction: keeps the chain of ticket_id, just locked, with the last seq and
 * head read at seq_col and head_col of row, and its contact's text salt at salt_col (if not
 * NULL), unless the transaction holds that chain already (its head is newer than the table's). */
void ct_store_keep_chain(struct ct_tx *tx, long long ticket_id, long long contact_id,
                         const PGresult *res, int row, int seq_col, int head_col, int salt_col);

/* Notes that tx appended to ticket_id's chain (see struct ct_tx). */
void ct_tx_touch(struct ct_tx *tx, long long ticket_id);

/* Runs a parameterised statement. Returns the result (caller PQclear()s) when it succeeded,
 * or NULL with err filled from the SQLSTATE: unique violation -> CT_E_CONFLICT, lost
 * connection -> CT_E_UNAVAILABLE, anything else CT_E_INTERNAL (detail logged, not returned). */
PGresult *ct_tx_exec(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                     struct ct_err *err);
/* Same with explicit lengths and formats (binary parameters such as hashes). */
PGresult *ct_tx_exec_bin(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                         const int *lengths, const int *formats, struct ct_err *err);

/* Query parameters, in $1..$n order, with room to format numbers in place (so no caller keeps
 * its own snprintf buffers). Start with `struct ct_params p = {0};`. More than CT_PARAMS_MAX
 * is a programming error (asserted). */
#define CT_PARAMS_MAX 20
struct ct_params {
    int n;
    const char *v[CT_PARAMS_MAX];
    int len[CT_PARAMS_MAX];
    int fmt[CT_PARAMS_MAX];          /* 1: binary */
    char text[CT_PARAMS_MAX][48];
};
/* Text (borrowed until the query runs); NULL is SQL NULL. */
void ct_param_str(struct ct_params *p, const char *s);
void ct_param_ll(struct ct_params *p, long long v);
/* An id where 0 means none: 0 is SQL NULL. */
void ct_param_id(struct ct_params *p, long long v);
void ct_param_bool(struct ct_params *p, bool v);
/* Unix microseconds as a timestamptz; SQL NULL when not present. */
void ct_param_ts(struct ct_params *p, bool present, long long us);
/* Raw bytes (borrowed), sent in binary as a bytea. */
void ct_param_bin(struct ct_params *p, const void *data, size_t len);

/* Adds key to obj as the string v (or raw JSON text json), null when NULL; false on OOM. The
 * rows of the set-based statements are built from these. */
bool ct_json_add_str(cJSON *obj, const char *key, const char *v);
bool ct_json_add_raw(cJSON *obj, const char *key, const char *json);
/* Appends item to arr, or frees it: false on OOM (a NULL item or arr counts as OOM). */
bool ct_json_append(cJSON *arr, cJSON *item);
/* Runs sql with a (and b, when not NULL) as JSON text parameters $1 (and $2): how the set-based
 * statements take a whole group's rows. NULL with err set on failure (a NULL a is OOM). */
PGresult *ct_tx_query_json(struct ct_tx *tx, const char *sql, const cJSON *a, const cJSON *b,
                           struct ct_err *err);

/* One statement of several sent in one round trip (ct_tx_steps). */
#define CT_TX_STEPS_MAX 4
struct ct_tx_step {
    const char *sql;
    struct ct_params p; /* its texts borrowed until ct_tx_steps returns */
    char *owned;        /* a parameter's text the step owns (malloc), freed by ct_tx_steps_clear */
    PGresult *res;      /* its result, set by ct_tx_steps when they all succeeded */
};
/* Runs steps[0..n) (n <= CT_TX_STEPS_MAX) in one round trip, in order, as ct_tx_query runs one
 * (prepared once per connection; BEGIN and COMMIT go along as they would with one): the
 * lookups of a group that do not depend on each other's answers. A failed step fails them all
 * (the server skips what follows it) and sets err from it. */
ct_rc ct_tx_steps(struct ct_tx *tx, struct ct_tx_step *steps, int n, struct ct_err *err);

/* The ticket read model (the API's JSON) of ticket id as a pipeline step (store_tickets.c), and
 * its answer read into *out (caller frees); ticket_not_found when there is no such ticket. */
void ct_store_ticket_by_id_step(struct ct_tx_step *step, long long id);
ct_rc ct_store_ticket_by_id_read(const PGresult *res, long long id, cJSON **out,
                                 struct ct_err *err);
/* Makes st run sql with arr's JSON text as $1 (the step owns the text); takes arr (NULL: OOM)
 * and frees it. false on OOM. */
bool ct_tx_step_json(struct ct_tx_step *st, const char *sql, cJSON *arr);
/* Frees what the steps hold (results and owned texts). */
void ct_tx_steps_clear(struct ct_tx_step *steps, int n);

/* A group's receipts statement and its complaint-rules statement, sent with its contacts'
 * locks in one round trip (ct_store_group_open): each *_step fills a step (false on OOM),
 * each *_read takes its answer (the receipts' may look up earlier receipts). */
bool ct_receipts_step(struct ct_tx_step *st, const struct ct_receipt_new *rs, size_t n,
                      struct ct_receipt_out *out);
ct_rc ct_receipts_read(struct ct_tx *tx, const PGresult *res, const struct ct_receipt_new *rs,
                       size_t n, struct ct_receipt_out *out, struct ct_err *err);
bool ct_rules_step(struct ct_tx_step *st, const char *const *texts, size_t n);
void ct_rules_read(struct ct_tx *tx, const PGresult *res, const char *const *texts, size_t n);

/* ct_tx_exec / ct_tx_exec0 with a ct_params. */
PGresult *ct_tx_query(struct ct_tx *tx, const char *sql, const struct ct_params *p,
                      struct ct_err *err);
ct_rc ct_tx_command(struct ct_tx *tx, const char *sql, const struct ct_params *p,
                    struct ct_err *err);

/* Runs a statement whose rows are not needed; returns its rc (err filled on failure). */
ct_rc ct_tx_exec0(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                  struct ct_err *err);

/* Connects with casetrail's session settings (synchronous_commit on, UTC, application_name,
 * connect timeout); NULL or a failed connection when it cannot. */
PGconn *ct_store_connect(const char *database_url);

/* A column's text (borrowed from res), NULL when SQL NULL. */
const char *ct_store_value(const PGresult *res, int row, int col);
/* Copies a text column or "" when NULL. */
void ct_store_copy(char *dst, size_t cap, const PGresult *res, int row, int col);

/* Formats Unix microseconds as a timestamptz literal PostgreSQL reads back exactly. */
void ct_store_fmt_ts(long long us, char out[48]);
/* Formats Unix microseconds as the API writes times (CT_SQL_ISO_US's format, UTC). */
void ct_store_fmt_iso(long long us, char out[48]);
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
