/* exports.h: finance and audit exports (issue 14). Approvals and ticket events leave casetrail
 * row by row from one read-only snapshot, their times in CASETRAIL_TIMEZONE, and every export
 * and every page of events is recorded in the access log with the rows actually handed out
 * (docs/DECISIONS.md#exports-access-log). */
#ifndef CASETRAIL_EXPORTS_H
#define CASETRAIL_EXPORTS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "casetrail/err.h"
#include "casetrail/model.h"
#include "casetrail/store_export.h"

struct ct_pool;

/* What the access log calls each read. */
#define CT_ACCESS_APPROVALS_CSV "approvals.csv"
#define CT_ACCESS_EVENTS_CSV "events.csv"
#define CT_ACCESS_EVENTS "events"

/* One export, as asked. Exactly one of approvals and events is set. */
struct ct_export_request {
    const struct ct_user *who;
    const char *zone;         /* IANA zone its times are formatted in (CASETRAIL_TIMEZONE) */
    const char *what;         /* CT_ACCESS_APPROVALS_CSV or CT_ACCESS_EVENTS_CSV */
    const char *filters_json; /* the filters as asked, kept in the access log */
    const struct ct_approval_filter *approvals;
    const struct ct_event_filter *events;
};

/* The writer an export streams into: sink's begin and row callbacks (store_export.h); flush,
 * once every row was handed over, sends what is left (false when that failed); finish ends the
 * body (the last chunk), called only once the export is recorded as complete; sent says how
 * many rows have reached the connection so far. */
struct ct_export_writer {
    struct ct_export_sink sink;
    bool (*flush)(void *arg);
    bool (*finish)(void *arg);
    long long (*sent)(void *arg);
};

/* Streams r into w. Before anything was written (*began false) a failure is an error to answer
 * as usual. Once begun the answer belongs to w: CT_OK means every row was sent and recorded,
 * anything else that the export was cut (the client left, the database failed, shutdown) after
 * w->sent rows. Either way a begun export is recorded in the access log (rows sent, complete or
 * not) after its snapshot is closed and before the body's end goes out: a client holding a
 * whole file holds a recorded one. When the record cannot be written the end is withheld, so
 * the client sees the export incomplete, and the facts go to the error log. */
ct_rc ct_exports_stream(struct ct_pool *pool, const struct ct_export_request *r,
                        const struct ct_export_writer *w, bool *began, struct ct_err *err);

/* One page of ticket events (f->limit, f->cursor) for who; bare dates in f are days in zone.
 * The page is recorded in the access log in the same transaction, so no page is handed out
 * unrecorded. *out is the caller's. */
ct_rc ct_exports_events_page(struct ct_pool *pool, const struct ct_user *who, const char *zone,
                             const struct ct_event_filter *f, const char *filters_json,
                             cJSON **out, char next_cursor[CT_CURSOR_MAX], struct ct_err *err);

#endif
