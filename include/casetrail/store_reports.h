/* store_reports.h: the storage side of reports (store_reports.c): one summary of a time range
 * built by PostgreSQL section by section, and one staff member's actions page by page. SQL
 * with parameters only; the answers are JSON in the API's shape. */
#ifndef CASETRAIL_STORE_REPORTS_H
#define CASETRAIL_STORE_REPORTS_H

#include <cjson/cJSON.h>

#include "casetrail/cursor.h"
#include "casetrail/err.h"
#include "casetrail/store.h"

/* A report's range: [from, to), timestamptz text. A bare date is that day's midnight in the zone
 * the transaction runs in (ct_store_use_zone). */
struct ct_report_range {
    const char *from, *to;
    const char *phone_number_id; /* NULL: every business number (summary only) */
};

/* Longest range a summary covers (its by_day has one entry a day). */
#define CT_REPORT_MAX_DAYS 400

/* Starts a report's transaction (its first statement, inside ct_store_in_tx): one snapshot for
 * every section (REPEATABLE READ, so the figures agree with each other), bare dates and day
 * buckets in zone, then the range checked there: CT_E_INVALID (range_reversed) when from is
 * after to, (range_too_long) past CT_REPORT_MAX_DAYS. */
ct_rc ct_store_report_begin(struct ct_tx *tx, const char *zone, const struct ct_report_range *r,
                            struct ct_err *err);

/* The summary of r (docs/DECISIONS.md#reports) as one JSON object; *out is the caller's. Must
 * run inside ct_store_in_tx with the zone set, in one snapshot (REPEATABLE READ). */
ct_rc ct_store_report_summary(struct ct_tx *tx, const struct ct_report_range *r, cJSON **out,
                              struct ct_err *err);

/* One page of the events user_id acted in (ticket and user chains), oldest first, keyset by
 * (occurred_at, id); next_cursor is "" at the end. *out is the caller's. */
ct_rc ct_store_activity_page(struct ct_tx *tx, long long user_id, const struct ct_report_range *r,
                             int limit, const struct ct_at_cursor *cursor, cJSON **out,
                             char next_cursor[CT_CURSOR_MAX], struct ct_err *err);

#endif
