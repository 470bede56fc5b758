/* store_export.h: the storage side of exports and the access log (store_export.c): approvals
 * and events streamed row by row through a server-side cursor, events read page by page, and
 * the access log written and listed. Like everything in the storage layer it speaks SQL with
 * parameters only and hands plain structs up. */
#ifndef CASETRAIL_STORE_EXPORT_H
#define CASETRAIL_STORE_EXPORT_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "casetrail/cursor.h"
#include "casetrail/err.h"
#include "casetrail/store.h"

/* Rows fetched from the cursor per round trip: each FETCH is one statement (bounded by
 * CASETRAIL_DB_TIMEOUT), and the client memory held is one batch. */
#define CT_EXPORT_BATCH 1000

/* Times in a bare date ("2026-03-01") in from/to below mean that day's midnight in the zone the
 * transaction runs in (ct_store_use_zone); a full timestamp carries its own offset. */

/* Sets the zone PostgreSQL reads bare dates and formats times in, for the rest of the
 * transaction only (set_config(..., true)): the pooled connection goes back in UTC. Must run
 * inside ct_store_in_tx; outside a transaction it would last one statement. */
ct_rc ct_store_use_zone(struct ct_tx *tx, const char *zone, struct ct_err *err);

/* One approval as the finance export shows it. Every field is text as PostgreSQL gave it, NULL
 * when the column is NULL; times are ISO 8601 with the zone's offset. Borrowed: valid during
 * the callback only. */
struct ct_export_approval {
    const char *id, *ticket_id, *contact_name, *contact_number, *kind, *amount_minor, *currency,
        *requested_by, *reason, *requested_at, *status, *decided_by, *decision_reason,
        *decided_at;
};

/* One ticket event as the audit export shows it (same rules as above). from and to name users
 * for assignment changes; data is the event's jsonb as PostgreSQL prints it; hash is hex. */
struct ct_export_event {
    const char *id, *ticket_id, *seq, *occurred_at, *recorded_at, *actor_type, *actor_id,
        *actor_name, *action, *from, *to, *reason, *data, *hash;
};

/* Where a streamed export goes. begin is called once, after the query answered (date: today in
 * the zone, YYYYMMDD, for a file name), then one row callback per row. Any callback returning
 * false stops the export (the client left). */
struct ct_export_sink {
    bool (*begin)(void *arg, const char *date);
    bool (*approval)(void *arg, const struct ct_export_approval *row);
    bool (*event)(void *arg, const struct ct_export_event *row);
    void *arg;
};

/* Ticket events, across tickets, by (occurred_at, id). */
struct ct_event_filter {
    long long ticket_id;        /* 0: every ticket */
    const char *actor;          /* NULL: anyone; else a staff member's name */
    const char *action;         /* NULL: any */
    const char *from, *to;      /* occurred_at >= from, < to; timestamptz text, NULL: open */
    int limit;                  /* pages only */
    struct ct_at_cursor cursor; /* pages only */
};

/* Streams the approvals matching f (limit and cursor unused), newest request first, in a read
 * only transaction whose times are formatted in zone. *stopped is true when the sink stopped
 * it. Must run inside ct_store_in_tx, as its first statement. */
ct_rc ct_store_export_approvals(struct ct_tx *tx, const char *zone,
                                const struct ct_approval_filter *f,
                                const struct ct_export_sink *sink, bool *stopped,
                                struct ct_err *err);
/* The same for ticket events, oldest first. */
ct_rc ct_store_export_events(struct ct_tx *tx, const char *zone, const struct ct_event_filter *f,
                             const struct ct_export_sink *sink, bool *stopped,
                             struct ct_err *err);

/* One page of ticket events in the API's shape (times in UTC with Z), oldest first;
 * next_cursor is "" at the end. *out is the caller's. */
ct_rc ct_store_events_page(struct ct_tx *tx, const struct ct_event_filter *f, cJSON **out,
                           char next_cursor[CT_CURSOR_MAX], struct ct_err *err);

/* Records in the access log that user_id took what (filters_json: the filters as asked, may be
 * NULL), rows rows, and whether it was handed out whole (complete). */
ct_rc ct_store_access_log_add(struct ct_tx *tx, long long user_id, const char *what,
                              const char *filters_json, long long rows, bool complete,
                              struct ct_err *err);

struct ct_access_filter {
    const char *user;           /* NULL: anyone; else a staff member's name */
    const char *what;           /* NULL: anything */
    const char *from, *to;      /* at >= from, < to; timestamptz text, NULL: open */
    int limit;
    struct ct_at_cursor cursor;
};

/* Access log entries, newest first, in the API's shape; next_cursor is "" at the end. */
ct_rc ct_store_access_log_list(struct ct_tx *tx, const struct ct_access_filter *f, cJSON **out,
                               char next_cursor[CT_CURSOR_MAX], struct ct_err *err);

#endif
