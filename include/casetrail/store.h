/* store.h: the storage layer. The only module that talks SQL; everything above it passes plain
 * structs. Connections come from a bounded pool that reconnects after the database restarts. */
#ifndef CASETRAIL_STORE_H
#define CASETRAIL_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "casetrail/cursor.h"
#include "casetrail/err.h"
#include "casetrail/model.h"

struct ct_pool;
struct ct_tx; /* a borrowed connection, inside a transaction when made by ct_store_in_tx */

/* Creates a pool of at most size connections to database_url (NULL: libpq defaults).
 * Connects lazily. Returns NULL on OOM. Free with ct_pool_free(). */
struct ct_pool *ct_pool_new(const char *database_url, int size);
/* Whether statements are prepared once per connection (default true). Turn off behind a
 * transaction-pooling proxy that cannot keep prepared statements. Call before first use. */
void ct_pool_set_prepare(struct ct_pool *pool, bool prepare);
/* Bounds every statement of request sessions: the server ends it after timeout_ms
 * (statement_timeout; lock waits after timeout_ms * 4 / 5), and casetrail itself gives up on an
 * answer 2 s after that, so a database that stops answering (frozen, cut off) is a 503 within
 * seconds instead of a request that hangs. 0 (the default, and the CLI's) means no bounds.
 * Call before first use. */
void ct_pool_set_timeout(struct ct_pool *pool, int timeout_ms);
void ct_pool_free(struct ct_pool *pool);
int ct_pool_size(const struct ct_pool *pool);
int ct_pool_in_use(struct ct_pool *pool);
/* True when the last attempt to use the database succeeded. */
bool ct_pool_db_up(struct ct_pool *pool);

typedef ct_rc (*ct_tx_fn)(struct ct_tx *tx, void *arg, struct ct_err *err);

/* Told, after each successful COMMIT, the tickets whose chains the transaction appended to
 * (n of them; overflow: more than could be listed). Called on the committing thread, with no
 * lock held: keep it short. */
typedef void (*ct_commit_fn)(void *arg, const long long *ticket_ids, int n, bool overflow);
/* Sets the hook (before any thread uses the pool). */
void ct_pool_on_commit(struct ct_pool *pool, ct_commit_fn fn, void *arg);

/* Runs fn between BEGIN and COMMIT on a pooled connection; ROLLBACK when fn fails. Retries the
 * whole of fn on serialization failure or deadlock (at most 3 times) and once on a connection
 * that broke before BEGIN, so fn must have no effect outside tx. CT_E_UNAVAILABLE when the
 * database cannot be reached. Returns only after COMMIT has been acknowledged. */
ct_rc ct_store_in_tx(struct ct_pool *pool, ct_tx_fn fn, void *arg, struct ct_err *err);
/* The same, with message rows and chain events held back and written set-based just before
 * COMMIT (group commit's writes): ct_store_message_insert then returns a negative placeholder
 * id, valid only as an event's data "message_id" in the same transaction, and reports a
 * duplicate only by failing the flush (CT_E_CONFLICT "batch_conflict"): run the work again
 * with ct_store_in_tx to learn whose it is. */
ct_rc ct_store_in_tx_batched(struct ct_pool *pool, ct_tx_fn fn, void *arg, struct ct_err *err);
/* Runs fn on a pooled connection in autocommit mode (reads). */
ct_rc ct_store_with_conn(struct ct_pool *pool, ct_tx_fn fn, void *arg, struct ct_err *err);

/* ---- migrations (dedicated connection, not the pool) ---- */

/* Highest version number among the NNNN_*.sql files in dir; -1 when none or unreadable. */
int ct_migrations_latest(const char *dir);
/* Applies pending migrations under an advisory lock; *applied counts new ones (may be NULL). */
ct_rc ct_store_migrate(const char *database_url, const char *dir, int *applied,
                       struct ct_err *err);
/* Whether this session commits synchronously (a COMMIT returns only once it is on disk). */
ct_rc ct_store_durable(struct ct_tx *tx, bool *durable, struct ct_err *err);
/* Highest applied version, -1 when schema_migrations does not exist yet. */
ct_rc ct_store_schema_version(struct ct_tx *tx, int *version, struct ct_err *err);

/* ---- users ---- */

/* Looks up an active or inactive user by token hash; CT_E_NOT_FOUND when none. */
ct_rc ct_store_user_by_token(struct ct_tx *tx, const char *token_hash, struct ct_user *out,
                             struct ct_err *err);
/* Looks up by name; with lock, takes a row lock (FOR UPDATE). CT_E_NOT_FOUND when none. */
ct_rc ct_store_user_by_name(struct ct_tx *tx, const char *name, bool lock, struct ct_user *out,
                            struct ct_err *err);
/* Inserts a user; CT_E_CONFLICT when the name is taken. Sets u->id. */
ct_rc ct_store_user_insert(struct ct_tx *tx, struct ct_user *u, const char *token_hash,
                           struct ct_err *err);
/* Updates role / active / token hash (NULL keeps the current one). */
ct_rc ct_store_user_update(struct ct_tx *tx, const struct ct_user *u, const char *token_hash,
                           struct ct_err *err);
/* ---- passwords, sign-in limits and sessions (store_users.c) ---- */

/* The stored password hash of user id into hash ("" when none is set). */
ct_rc ct_store_user_password(struct ct_tx *tx, long long id, char *hash, size_t len,
                             struct ct_err *err);
/* Sets user id's password hash and ends every session the user has. */
ct_rc ct_store_user_set_password(struct ct_tx *tx, long long id, const char *hash,
                                 struct ct_err *err);
/* Seconds until a sign-in for name from address may be tried again: more than max_name
 * failures for the name or max_address from the address within window_s. 0: go ahead. */
ct_rc ct_store_sign_in_wait(struct ct_tx *tx, const char *name, const char *address,
                            int max_name, int max_address, int window_s, int *wait_s,
                            struct ct_err *err);
/* Records a failed sign-in (and forgets failures older than a day). */
ct_rc ct_store_sign_in_failed(struct ct_tx *tx, const char *name, const char *address,
                              struct ct_err *err);
/* A successful sign-in forgets the name's failures. */
ct_rc ct_store_sign_in_succeeded(struct ct_tx *tx, const char *name, struct ct_err *err);
ct_rc ct_store_session_insert(struct ct_tx *tx, const char *token_hash, const struct ct_user *u,
                              const char *address, const char *user_agent, struct ct_err *err);
/* The user of a live session: not ended, used within idle_min minutes, made within max_h hours,
 * the user still active and in the role they signed in with. Marks it used (at most once a
 * minute, so reads do not each write). CT_E_NOT_FOUND when there is no such session. */
ct_rc ct_store_session_user(struct ct_tx *tx, const char *token_hash, int idle_min, int max_h,
                            struct ct_user *out, struct ct_err *err);
/* Ends a session (sign-out); ending an unknown or ended one is not an error. */
ct_rc ct_store_session_end(struct ct_tx *tx, const char *token_hash, struct ct_err *err);

/* ---- evidence and the access log (store_evidence.c) ---- */

/* {"messages","receipts","approvals","media"} of a ticket for its evidence bundle: receipts
 * whole (base64 body, SHA-256, signature header). *out is owned by the caller. */
ct_rc ct_store_evidence_rows(struct ct_tx *tx, long long ticket_id, cJSON **out,
                             struct ct_err *err);
/* Access-log kinds of a ticket opened by a person in the viewer (api_tickets.c). */
#define CT_ACCESS_TICKET_VIEW "ticket.view"
#define CT_ACCESS_TICKET_PRINT "ticket.print"
/* Records that user_id read what (ticket_id 0: none; filters_json may be NULL). */
ct_rc ct_store_access_log(struct ct_tx *tx, long long user_id, const char *what,
                          long long ticket_id, const char *filters_json, long long rows,
                          struct ct_err *err);

/* Lists all users by name; *out is a calloc'd array the caller frees. */
ct_rc ct_store_user_list(struct ct_tx *tx, struct ct_user **out, size_t *n, struct ct_err *err);

/* ---- events ---- */

/* Appends one event to its chain inside tx: locks the chain's owner row, takes the next seq,
 * digests texts with their salts, hashes, inserts. Sets *seq_out when non-NULL. */
ct_rc ct_store_event_append(struct ct_tx *tx, const struct ct_event_new *ev, long long *seq_out,
                            struct ct_err *err);

/* ---- ingestion (webhooks) ---- */

/* A raw webhook body to keep, with the counts it will have when all its entries are new, and
 * its messages' wamids (a JSON array of strings, or NULL) to look up on the way. */
struct ct_receipt_new {
    const char *body;
    size_t len;
    const char *signature;   /* checked X-Hub-Signature-256, or NULL */
    int messages, statuses, rejected;
    const char *wamids_json;
    size_t nwamids;
};
/* Stores the raw webhook body as received; sets *id and sha256_hex (its SHA-256, which events
 * carry so the bytes are bound to the chain). A byte-identical body stored before is not
 * stored again: *id is then the earlier receipt and *dup is true. known[i] (nwamids entries,
 * or NULL) is set for each wamid already stored. */
ct_rc ct_store_receipt_insert(struct ct_tx *tx, const struct ct_receipt_new *r, long long *id,
                              bool *dup, char sha256_hex[65], bool *known, struct ct_err *err);
/* What storing one receipt of a group tells: known is the caller's array (nwamids entries,
 * or NULL), filled as ct_store_receipt_insert fills it. */
struct ct_receipt_out {
    long long id;
    bool dup;
    char sha256[65];
    bool *known;
};
ct_rc ct_store_receipt_counts(struct ct_tx *tx, long long id, int messages, int statuses,
                              int rejected, struct ct_err *err);
/* Records an entry of receipt_id that could not be stored (kind "message" or "status", its
 * position in the envelope, the reason, and the entry as JSON text or NULL). A second record of
 * the same position changes nothing. */
ct_rc ct_store_reject_insert(struct ct_tx *tx, long long receipt_id, const char *kind,
                             const char *position, const char *reason, const char *item,
                             struct ct_err *err);
/* Recorded rejects, newest first, in the API's shape. */
ct_rc ct_store_rejects_list(struct ct_tx *tx, int limit, const struct ct_id_cursor *cursor,
                            cJSON **out, char next_cursor[CT_CURSOR_MAX], struct ct_err *err);
/* A contact row as identity resolution needs it. */
struct ct_contact_row {
    long long id;
    char wa_id[72];        /* "" when unknown */
    char user_id[168];     /* "" when unknown */
    long long merged_into; /* 0 when this row is the contact itself */
    /* the display name as stored, so an unchanged one is not written again */
    enum { CT_NAME_UNKNOWN, CT_NAME_NULL, CT_NAME_SET } name_state; /* UNKNOWN: too long */
    char name[256];
};

/* Finds and locks (FOR UPDATE) the contact of phone_number_id whose BSUID (by_user) or phone
 * number (otherwise) is value; *found false when none. Locking serialises every webhook about
 * one customer. */
ct_rc ct_store_contact_find(struct ct_tx *tx, const char *phone_number_id, bool by_user,
                            const char *value, struct ct_contact_row *out, bool *found,
                            struct ct_err *err);
/* Locks contact id; CT_E_NOT_FOUND when it does not exist. */
ct_rc ct_store_contact_get(struct ct_tx *tx, long long id, struct ct_contact_row *out,
                           struct ct_err *err);
/* Creates a contact with whichever ids are non-NULL unless a row already holds one of them
 * (a concurrent delivery made it first); the caller finds it again either way. */
ct_rc ct_store_contact_insert(struct ct_tx *tx, const char *phone_number_id, const char *wa_id,
                              const char *user_id, struct ct_err *err);
/* Keeps an id a contact no longer carries (an old phone number or BSUID) pointing at it: a row
 * holding only that id with merged_into = into, so late deliveries under the old id still
 * reach the same customer. Nothing when a row already holds the id. */
ct_rc ct_store_contact_alias(struct ct_tx *tx, const char *phone_number_id, bool by_user,
                             const char *value, long long into, struct ct_err *err);
/* Sets the ids given (non-NULL) on a locked contact. */
ct_rc ct_store_contact_set_ids(struct ct_tx *tx, long long id, const char *wa_id,
                               const char *user_id, const char *parent_user_id,
                               struct ct_err *err);
/* Folds contact from into contact into: from points at into from now on, and its tickets move
 * over, except a ticket still open while into has one too (it stays, reachable by history). */
ct_rc ct_store_contact_merge(struct ct_tx *tx, long long from, long long into,
                             struct ct_err *err);
/* Keeps the username current, like the profile name (an older message never overwrites). */
ct_rc ct_store_contact_username(struct ct_tx *tx, long long id, const char *username,
                                long long sent_us, struct ct_err *err);
/* The contact's ticket that is not closed, else its latest one; *id 0 when it has none. */
ct_rc ct_store_ticket_latest(struct ct_tx *tx, long long contact_id, long long *id,
                             struct ct_err *err);
/* Sets the ticket's first_response_at once (the earliest reply wins). */
ct_rc ct_store_ticket_first_response(struct ct_tx *tx, long long id, long long at_us,
                                     struct ct_err *err);
/* Keeps the profile name current: updates only when it differs and the message giving it is
 * not older than the one that gave the current name. */
ct_rc ct_store_contact_name(struct ct_tx *tx, long long id, const char *name, long long sent_us,
                            struct ct_err *err);
ct_rc ct_store_message_exists(struct ct_tx *tx, const char *wamid, bool *exists,
                              struct ct_err *err);

/* The contact's ticket that is not closed, locked (FOR UPDATE); out->id is 0 when none. With a
 * wamid (NULL: none), *known says whether a message with it is stored (or held back in this
 * batched transaction), checked in the same statement; run it under the contact's row lock.
 * When *known, out may be left empty. */
ct_rc ct_store_ticket_live(struct ct_tx *tx, long long contact_id, const char *wamid,
                           struct ct_ticket_ref *out, bool *known, struct ct_err *err);
/* One message of a batched group, as ct_store_group_open asks about it (NULL: absent). */
struct ct_preload_key {
    const char *phone_number_id, *wa_id, *user_id, *wamid;
};
/* What a batched group asks before its messages. */
struct ct_group_open {
    /* its raw bodies, stored as ct_store_receipt_insert would store them one after another in
     * this order (a body twice: the second is a duplicate of the first); out[i] is what that
     * would have told (its known: the caller's array, or NULL). nreceipts 0: none. */
    const struct ct_receipt_new *receipts;
    struct ct_receipt_out *receipts_out;
    size_t nreceipts;
    /* the texts whose complaint rule ct_store_rule_match is then answered without a trip */
    const char *const *texts;
    size_t ntexts;
    /* the contacts its messages name, locked by phone number and by BSUID in byte order,
     * then their live tickets and which of the wamids are stored, kept so ct_store_contact_find
     * and ct_store_ticket_live answer them without a round trip per message (an answer is
     * dropped when this transaction changes what it describes) */
    const struct ct_preload_key *keys;
    size_t nkeys;
    size_t locked; /* out: how many contacts the lock found */
};
/* In a batched transaction: receipts, rules, contact locks and then the live tickets in one
 * round trip (with the transaction's BEGIN; the live tickets' statement runs after the locks,
 * so it sees what their earlier holders committed). Nothing otherwise. */
ct_rc ct_store_group_open(struct ct_tx *tx, struct ct_group_open *g, struct ct_err *err);
/* Locks a ticket by id; CT_E_NOT_FOUND when it does not exist. */
ct_rc ct_store_ticket_lock(struct ct_tx *tx, long long id, struct ct_ticket_ref *out,
                           struct ct_err *err);
/* Creates a ticket in status new; sets *id. */
ct_rc ct_store_ticket_create(struct ct_tx *tx, long long contact_id, const char *phone_number_id,
                             long long *id, struct ct_err *err);
ct_rc ct_store_ticket_set_status(struct ct_tx *tx, long long id, enum ct_status status,
                                 struct ct_err *err);
/* Moves updated_at to now and last_message_at forward to message_us (0: leave it). */
ct_rc ct_store_ticket_touch(struct ct_tx *tx, long long id, long long message_us,
                            struct ct_err *err);

struct ct_message_new {
    const char *wamid;
    long long ticket_id;   /* 0: none */
    long long contact_id;
    const char *direction; /* "in" | "out" */
    const char *type;
    const char *body;      /* may be NULL */
    const char *payload;   /* JSON text */
    const char *context_wamid;
    const char *target_wamid; /* edit / revoke: the message it changes; NULL otherwise */
    long long sent_us;
    long long receipt_id;  /* 0: none */
    bool immediate;        /* its real id is needed at once (media): never held back */
};

/* Inserts a message; *dup is true (and nothing written) when its wamid is already stored.
 * payload_sha256 gets the SHA-256 of the payload as PostgreSQL stores it (jsonb text), the
 * value verify recomputes. */
ct_rc ct_store_message_insert(struct ct_tx *tx, const struct ct_message_new *m, long long *id,
                              bool *dup, char payload_sha256[65], struct ct_err *err);

struct ct_outbound_ref {
    long long id;
    long long ticket_id;   /* 0: none */
    char status[16];       /* "" when no status yet */
};

/* Locks the outbound message with wamid; *found is false when there is none. */
ct_rc ct_store_outbound_lock(struct ct_tx *tx, const char *wamid, struct ct_outbound_ref *out,
                             bool *found, struct ct_err *err);
/* Records one receipt (wamid, status) once; *dup when already recorded. */
ct_rc ct_store_status_insert(struct ct_tx *tx, long long message_id, const char *wamid,
                             const char *status, long long ts_us, const char *recipient,
                             const char *recipient_user_id, const char *username,
                             const char *errors_json, long long receipt_id, bool *dup,
                             struct ct_err *err);
ct_rc ct_store_message_set_status(struct ct_tx *tx, long long id, const char *status,
                                  long long ts_us, int error_code, const char *error_title,
                                  struct ct_err *err);

/* Unix microseconds now (CLOCK_REALTIME): the clock events are recorded by. */
long long ct_store_now_us(void);

/* ---- outbound replies and the outbox (store_outbox.c) ---- */

/* Where a reply to a ticket goes, and whether the 24-hour window is open. */
struct ct_reply_target {
    long long contact_id;
    char phone_number_id[40];
    char wa_id[72];              /* "" when the customer hides their number */
    char user_id[168];           /* "" when unknown */
    bool has_inbound;
    long long last_inbound_us;   /* the customer's latest message (any ticket, any alias) */
};

ct_rc ct_store_reply_target(struct ct_tx *tx, long long ticket_id, struct ct_reply_target *out,
                            struct ct_err *err);
/* Whether wamid names a message of ticket_id. */
ct_rc ct_store_message_in_ticket(struct ct_tx *tx, long long ticket_id, const char *wamid,
                                 bool *found, struct ct_err *err);

struct ct_outbound_new {
    long long ticket_id, contact_id, author_id;
    const char *type;            /* "text" | "template" */
    const char *text;            /* what the timeline shows */
    const char *graph_body;      /* the Graph request body (JSON text) */
    const char *context_wamid;   /* reply_to, or NULL */
    const char *phone_number_id;
    const char *recipient;       /* pacing key: phone number, else BSUID */
};

/* Inserts the outbound message (status queued, no wamid yet) and its outbox row. */
ct_rc ct_store_outbound_queue(struct ct_tx *tx, const struct ct_outbound_new *m,
                              long long *message_id, long long *outbox_id, struct ct_err *err);
/* One outbound message in the API's shape (caller cJSON_Delete()s). */
ct_rc ct_store_outbound_get(struct ct_tx *tx, long long message_id, cJSON **out,
                            struct ct_err *err);

/* Serialises requests with one Idempotency-Key of one user until the transaction ends. */
ct_rc ct_store_idempotency_lock(struct ct_tx *tx, long long user_id, const char *key,
                                struct ct_err *err);
/* The stored answer of key within the last 24 hours: *found, its request hash, status and
 * response (malloc'd, caller frees). */
ct_rc ct_store_idempotency_get(struct ct_tx *tx, long long user_id, const char *key,
                               bool *found, char request_sha256[65], int *status,
                               char **response, struct ct_err *err);
ct_rc ct_store_idempotency_put(struct ct_tx *tx, long long user_id, const char *key,
                               const char *request_sha256, int status, const char *response,
                               struct ct_err *err);

/* The newest inbound message of ticket_id that Graph can still mark read: it has a wamid, is at
 * most 30 days old (Graph's limit), and the ticket is not closed. found false when there is
 * none or a read mark for it is already queued or done. */
struct ct_read_target {
    long long message_id;
    char wamid[256];
    char phone_number_id[40];
    char recipient[168];         /* wa_id, else BSUID: for the operator reading the outbox */
};
ct_rc ct_store_read_target(struct ct_tx *tx, long long ticket_id, struct ct_read_target *out,
                           bool *found, struct ct_err *err);
/* Queues Graph body (JSON text) as the read mark of t, asked for by user_id; a mark already
 * queued for that message stays as it is. */
ct_rc ct_store_read_mark_queue(struct ct_tx *tx, const struct ct_read_target *t,
                               const char *body, long long user_id, struct ct_err *err);

/* A claimed outbox row. */
struct ct_outbox_job {
    long long id, message_id, ticket_id;
    bool read_mark;              /* kind 'read': marks the inbound message_id read, no event */
    int attempts;                /* including this one */
    char phone_number_id[40];
    char recipient[168];
    char *body;                  /* Graph request body; owned, free() */
};

/* Claims the next due row (state sending, attempts + 1) that pacing allows: the oldest queued
 * message of a recipient with nothing in flight, not sooner than pace_ms after the last one to
 * that recipient, and at most rate_per_s per business number (0: no cap). Several casetrail
 * instances share the work (FOR UPDATE SKIP LOCKED). *found false when nothing is due. */
ct_rc ct_store_outbox_claim(struct ct_tx *tx, int pace_ms, int rate_per_s,
                            struct ct_outbox_job *out, bool *found, struct ct_err *err);
/* Graph accepted it: the wamid, status sent, the outbox row done. */
ct_rc ct_store_outbox_sent(struct ct_tx *tx, const struct ct_outbox_job *job, const char *wamid,
                           struct ct_err *err);
/* Queued again after delay_ms, with the error that made it retry. */
ct_rc ct_store_outbox_retry(struct ct_tx *tx, const struct ct_outbox_job *job, long delay_ms,
                            const char *error, struct ct_err *err);
/* Failed for good: the message keeps the Graph code and title. */
ct_rc ct_store_outbox_failed(struct ct_tx *tx, const struct ct_outbox_job *job, int code,
                             const char *title, struct ct_err *err);
/* At start: rows left 'sending' by a process that died are queued again (their send may or may
 * not have reached Graph: the one at-least-once window). *n counts them. */
ct_rc ct_store_outbox_recover(struct ct_tx *tx, int *n, struct ct_err *err);
/* Rows waiting (queued or sending) and the age of the oldest, for /metrics. */
ct_rc ct_store_outbox_stats(struct ct_tx *tx, long long *depth, double *oldest_s,
                            struct ct_err *err);

/* ---- media evidence (store_media.c) ---- */

/* Records a customer's media to fetch (the message's type object had an id). */
ct_rc ct_store_media_insert(struct ct_tx *tx, long long message_id, const char *media_id,
                            const char *mime_type, const char *expect_sha256,
                            struct ct_err *err);

struct ct_media_job {
    long long id, message_id, ticket_id;
    int attempts;               /* including this one */
    char media_id[72];
    char mime_type[128];
    char expect_sha256[136];
};

/* Claims the next due pending media (attempts + 1, next try pushed back a minute so a
 * worker that dies does not hold it); several instances share the work. */
ct_rc ct_store_media_claim(struct ct_tx *tx, struct ct_media_job *out, bool *found,
                           struct ct_err *err);
/* Stored: its hex SHA-256 (the file's name) and size. */
ct_rc ct_store_media_stored(struct ct_tx *tx, long long id, const char *sha256, long long size,
                            const char *mime_type, struct ct_err *err);
/* Not this time: pending again after delay_ms, or (final) failed, with the reason. */
ct_rc ct_store_media_retry(struct ct_tx *tx, long long id, long delay_ms, bool final,
                           const char *reason, struct ct_err *err);
/* A stored media of message_id for GET /api/media/{id}: *found, its sha256 and mime type. */
ct_rc ct_store_media_get(struct ct_tx *tx, long long message_id, bool *found,
                         char sha256[65], char mime_type[128], struct ct_err *err);

/* ---- read models (return cJSON in the API's shape; caller owns and cJSON_Delete()s) ---- */

struct ct_ticket_filter {
    const char *status;    /* NULL: any */
    const char *assignee;  /* NULL: any; "none": unassigned; else a user name */
    int escalated;         /* -1 any, 0 not escalated, 1 escalated */
    const char *contact;   /* NULL: any; wa_id exactly or case-insensitive name substring */
    const char *priority;  /* NULL: any */
    int pending_approval;  /* -1 any, 1 with an approval pending, 0 without */
    const char *phone_number_id; /* NULL: any business number */
    const char *q;         /* NULL: no search; else words that must each appear (any case) in
                            * some message of the ticket */
    /* Activity: tickets with an event that occurred in [active_from, active_to) (YYYY-MM-DD,
     * midnight in `timezone`, or ISO 8601 with a zone; either NULL for open-ended), or on the
     * days `active` names in `timezone`: today, yesterday, 7d or 30d (ending today), or one
     * YYYY-MM-DD. */
    const char *active_from, *active_to;
    const char *active, *timezone;
    int limit;
    struct ct_ticket_cursor cursor;
};

/* Tickets newest activity first; next_cursor is "" when there are no more. With counts
 * non-NULL and no cursor (the first page), also {"new":N,...}: how many tickets of each
 * status match the other filters; *counts stays NULL on later pages. */
ct_rc ct_store_tickets_list(struct ct_tx *tx, const struct ct_ticket_filter *f, cJSON **out,
                            cJSON **counts, char next_cursor[CT_CURSOR_MAX], struct ct_err *err);
/* One ticket; CT_E_NOT_FOUND when unknown. */
ct_rc ct_store_ticket_get(struct ct_tx *tx, long long id, cJSON **out, struct ct_err *err);

/* Where a timeline page leads; "" where nothing does. */
struct ct_timeline_page {
    char next[CT_CURSOR_MAX];   /* the items after the page */
    char prev[CT_CURSOR_MAX];   /* the items before it ('b' cursor) */
    char resume[CT_CURSOR_MAX]; /* the chain position this answer was read at */
};

/* A ticket as ct_store_ticket_get gives it (*ticket), with a page of its messages and events
 * in time order (ties: order of recording), `limit` of them (*items): from the start, after a
 * 'l' cursor, before a 'b' cursor, or (latest) the last ones. Given back as the cursor,
 * page->resume returns what was recorded since (the next `limit` events of the chain and the
 * messages they record, in time order; next set when more follow). Both are read in one round
 * trip and one snapshot; the caller frees both (NULL on error: ticket_not_found when there is
 * no such ticket). */
ct_rc ct_store_ticket_timeline(struct ct_tx *tx, long long ticket_id, int limit, bool latest,
                               const struct ct_timeline_cursor *cur, cJSON **ticket,
                               cJSON **items, struct ct_timeline_page *page, struct ct_err *err);

/* ---- workflow ---- */

/* Changes one column of a locked ticket and moves updated_at. assignee_id 0 unassigns. */
ct_rc ct_store_ticket_set_assignee(struct ct_tx *tx, long long id, long long assignee_id,
                                   struct ct_err *err);
/* complaint: the "escalated by a complaint rule" flag (cleared by de-escalation). */
ct_rc ct_store_ticket_set_escalation(struct ct_tx *tx, long long id, int level, bool complaint,
                                     struct ct_err *err);
ct_rc ct_store_ticket_set_priority(struct ct_tx *tx, long long id, enum ct_priority priority,
                                   struct ct_err *err);

/* Inserts a pending approval (requested now); sets a->id. */
ct_rc ct_store_approval_insert(struct ct_tx *tx, struct ct_approval *a, const char *reason,
                               struct ct_err *err);
/* Locks an approval row; CT_E_NOT_FOUND when unknown. */
ct_rc ct_store_approval_lock(struct ct_tx *tx, long long id, struct ct_approval *out,
                             struct ct_err *err);
ct_rc ct_store_approval_decide(struct ct_tx *tx, long long id, enum ct_approval_status status,
                               long long decided_by, const char *reason, struct ct_err *err);
/* One approval in the API's shape. */
ct_rc ct_store_approval_get(struct ct_tx *tx, long long id, cJSON **out, struct ct_err *err);

struct ct_approval_filter {
    const char *status, *kind, *requested_by, *decided_by; /* NULL: any; names for users */
    const char *from, *to;                                 /* timestamptz text, NULL: open */
    int limit;
    struct ct_id_cursor cursor;
};

/* Approvals, newest request first; next_cursor is "" at the end. */
ct_rc ct_store_approvals_list(struct ct_tx *tx, const struct ct_approval_filter *f, cJSON **out,
                              char next_cursor[CT_CURSOR_MAX], struct ct_err *err);

/* ---- audit chains (verify, digest) ---- */

struct ct_chain;
struct ct_chain_head;
struct ct_digest;

/* Loads a chain ("ticket" or "user", id) in one REPEATABLE READ snapshot: events by seq, the
 * texts its digests vouch for (with their salts), and the owner's head. CT_E_NOT_FOUND when the
 * owner does not exist. Must run inside ct_store_in_tx. Free with ct_chain_free(). */
ct_rc ct_store_chain_load(struct ct_tx *tx, const char *kind, long long id, struct ct_chain *out,
                          struct ct_err *err);
/* Every chain owner that has events: kinds[i] is "ticket" or "user". Arrays are calloc'd. */
ct_rc ct_store_chain_list(struct ct_tx *tx, char (**kinds)[8], long long **ids, size_t *n,
                          struct ct_err *err);
/* Fills d (version 2: events, chains, upto_id, Merkle root, time) at a consistent point: waits
 * for appends in flight and holds new ones back until the transaction ends. Must run inside
 * ct_store_in_tx. */
ct_rc ct_store_digest_now(struct ct_tx *tx, struct ct_digest *d, struct ct_err *err);
/* Recomputes events, chains and the root (of version 1 or 2) over the events with
 * id <= upto_id, as they are stored now. */
ct_rc ct_store_digest_at(struct ct_tx *tx, long long upto_id, int version, long long *events,
                         long long *chains, char root[65], struct ct_err *err);
/* Keeps d (its payload, and its signature when signed) in the append-only digests table. */
ct_rc ct_store_digest_save(struct ct_tx *tx, const struct ct_digest *d, struct ct_err *err);
/* The newest signed digest that covers ticket_id: its payload text (*payload newly allocated,
 * NULL when there is none), its signature's hex, the ticket's last seq it covers, and, when
 * heads is not NULL, every chain head at its digest point (*heads calloc'd; both freed by the
 * caller), from which the ticket's proof is cut. */
ct_rc ct_store_digest_covering(struct ct_tx *tx, long long ticket_id, char **payload,
                               char signature[129], long long *covers_seq,
                               struct ct_chain_head **heads, size_t *n, struct ct_err *err);

/* ---- complaint rules ---- */

ct_rc ct_store_rules_list(struct ct_tx *tx, cJSON **out, struct ct_err *err);
/* Replaces every rule with rules (an array of {"pattern","match","enabled"} already checked
 * for shape). CT_E_INVALID (invalid_regex) when a regex does not compile. */
ct_rc ct_store_rules_replace(struct ct_tx *tx, const cJSON *rules, struct ct_err *err);
/* First enabled rule matching text (case-insensitive); *rule_id is 0 when none. pattern gets
 * the rule's pattern (room for 1024 bytes). */
ct_rc ct_store_rule_match(struct ct_tx *tx, const char *text, long long *rule_id,
                          char pattern[1024], struct ct_err *err);

#endif
