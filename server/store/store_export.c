/* store_export.c: exports streamed through a server-side cursor (DECLARE ... NO SCROLL CURSOR,
 * then FETCH CT_EXPORT_BATCH rows at a time, in one read-only transaction), pages of events
 * across tickets, and the access log. WHERE clauses are put together from fixed fragments for
 * the filters actually given, values always as parameters: each combination gets its own
 * prepared plan, so ticket= can use the (ticket_id, seq) index and a time range the
 * (occurred_at, id) one, which one generic "$1 IS NULL OR ..." plan cannot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/buf.h"
#include "casetrail/store_export.h"
#include "store_internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define ISO_UTC(col) CT_SQL_ISO_US(col)
/* ISO 8601 in the transaction's zone (ct_store_use_zone), with its offset as +HH:MM:
 * 2026-03-01T09:30:00.000000+05:00. Bare +05 would be ISO 8601 too, but not RFC 3339. */
#define ISO_ZONE(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM')"

/* A statement put together from fixed fragments: the SQL text and its parameters. */
struct query {
    struct ct_buf sql;
    struct ct_params p;
};

static void query_start(struct query *q, const char *head)
{
    memset(&q->p, 0, sizeof(q->p));
    ct_buf_init(&q->sql, 0);
    ct_buf_adds(&q->sql, head);
}

/* Adds a condition when value is given. cond is a constant of this file holding one %d: the
 * number of the parameter value becomes. */
static void and_text(struct query *q, const char *cond, const char *value)
{
    if (value == NULL)
        return;
    ct_param_str(&q->p, value);
    ct_buf_addf(&q->sql, cond, q->p.n);
}

/* Runs q (its text freed here); NULL with err filled on failure, as ct_tx_query. */
static PGresult *query_run(struct ct_tx *tx, struct query *q, struct ct_err *err)
{
    char *sql = ct_buf_take(&q->sql, NULL);
    if (sql == NULL) {
        ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        return NULL;
    }
    PGresult *res = ct_tx_query(tx, sql, &q->p, err);
    free(sql);
    return res;
}

ct_rc ct_store_use_zone(struct ct_tx *tx, const char *zone, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, zone);
    /* local to the transaction: the connection returns to the pool in UTC whatever happens */
    return ct_tx_command(tx, "SELECT set_config('TimeZone', $1, true)", &p, err);
}

/* ---- approvals ---- */

#define APPROVAL_EXPORT_SQL                                                                   \
    "DECLARE ct_export NO SCROLL CURSOR FOR"                                                  \
    " SELECT a.id, a.ticket_id, coalesce(c.name, m.name), coalesce(c.wa_id, m.wa_id), a.kind," \
    " a.amount_minor, a.currency, r.name, a.reason, " ISO_ZONE("a.requested_at") ","         \
    " a.status, d.name, a.decision_reason, " ISO_ZONE("a.decided_at")                         \
    " FROM approvals a JOIN users r ON r.id = a.requested_by"                                 \
    " LEFT JOIN users d ON d.id = a.decided_by"                                               \
    " JOIN tickets t ON t.id = a.ticket_id JOIN contacts c ON c.id = t.contact_id"           \
    /* a contact folded into another keeps only the id it was known by: the name is there */  \
    " LEFT JOIN contacts m ON m.id = c.merged_into WHERE true"

/* The same filters as GET /api/approvals (ct_store_approvals_list). */
static void approval_where(struct query *q, const struct ct_approval_filter *f)
{
    and_text(q, " AND a.status = $%d", f->status);
    and_text(q, " AND a.kind = $%d", f->kind);
    and_text(q, " AND r.name = $%d", f->requested_by);
    and_text(q, " AND d.name = $%d", f->decided_by);
    and_text(q, " AND a.requested_at >= $%d::timestamptz", f->from);
    and_text(q, " AND a.requested_at < $%d::timestamptz", f->to);
}

static bool approval_row(const struct ct_export_sink *sink, const PGresult *res, int r)
{
    struct ct_export_approval a = {
        ct_store_value(res, r, 0), ct_store_value(res, r, 1), ct_store_value(res, r, 2),
        ct_store_value(res, r, 3), ct_store_value(res, r, 4), ct_store_value(res, r, 5),
        ct_store_value(res, r, 6), ct_store_value(res, r, 7), ct_store_value(res, r, 8),
        ct_store_value(res, r, 9), ct_store_value(res, r, 10), ct_store_value(res, r, 11),
        ct_store_value(res, r, 12), ct_store_value(res, r, 13),
    };
    return sink->approval(sink->arg, &a);
}

/* ---- events ---- */

/* Who acted, from, to and the reason, as the timeline shows them (store_tickets.c): the actor's
 * name as it was when they acted, user names for an assignment's ids. Both texts come from one
 * lookup of the event's texts: two subqueries took 10.9 s of a 1,000,000-event export's query
 * time, this 7.5 s (EXPLAIN ANALYZE, docs/PERFORMANCE.md). */
#define EVENT_TEXTS                                                                           \
    " LEFT JOIN LATERAL (SELECT max(x.body) FILTER (WHERE x.field = 'actor_name') AS actor,"  \
    " max(x.body) FILTER (WHERE x.field = 'reason') AS reason FROM event_texts x"             \
    " WHERE x.event_id = e.id AND x.field IN ('actor_name', 'reason')) t ON true"
#define EVENT_ACTOR_NAME                                                                      \
    "CASE WHEN e.actor_type = '" CT_ACTOR_SYSTEM "' THEN 'system' ELSE t.actor END"
#define EVENT_USER(v)                                                                         \
    "CASE WHEN e.action = '" CT_EV_ASSIGNMENT "' THEN (SELECT u.name FROM users u WHERE"      \
    " u.id = CASE WHEN " v " ~ '^[0-9]{1,18}$' THEN " v "::bigint END) ELSE " v " END"

#define EVENT_EXPORT_SQL                                                                      \
    "DECLARE ct_export NO SCROLL CURSOR FOR"                                                  \
    " SELECT e.id, e.ticket_id, e.seq, " ISO_ZONE("e.occurred_at") ","                       \
    " " ISO_ZONE("e.recorded_at") ", e.actor_type, e.actor_id, " EVENT_ACTOR_NAME ","         \
    " e.action, " EVENT_USER("e.from_value") ", " EVENT_USER("e.to_value") ","               \
    " t.reason, e.data::text, encode(e.hash, 'hex') FROM events e" EVENT_TEXTS               \
    " WHERE e.ticket_id IS NOT NULL"

#define EVENT_PAGE_SQL                                                                        \
    "SELECT jsonb_build_object('id', e.id, 'ticket_id', e.ticket_id, 'seq', e.seq,"           \
    " 'action', e.action, 'actor', jsonb_build_object('type', e.actor_type,"                  \
    " 'id', e.actor_id, 'name', " EVENT_ACTOR_NAME "),"                                       \
    " 'from', " EVENT_USER("e.from_value") ", 'to', " EVENT_USER("e.to_value") ","           \
    " 'reason', t.reason, 'at', " ISO_UTC("e.occurred_at") ","                               \
    " 'recorded_at', " ISO_UTC("e.recorded_at") ", 'data', e.data,"                           \
    " 'hash', encode(e.hash, 'hex'))::text, " CT_SQL_US("e.occurred_at") ", e.id"            \
    " FROM events e" EVENT_TEXTS " WHERE e.ticket_id IS NOT NULL"

/* Ticket events only: a user's chain (role changes, tokens) is read with casetrail verify. The
 * actor's name is looked up first and its id compared as a value: against a subquery the
 * planner cannot use the column's statistics, and a page of one agent's events took a 200 ms
 * scan of a million events instead of 0.7 ms along the (occurred_at, id) index. */
static ct_rc event_where(struct ct_tx *tx, struct query *q, const struct ct_event_filter *f,
                         struct ct_err *err)
{
    if (f->ticket_id > 0) {
        ct_param_ll(&q->p, f->ticket_id);
        ct_buf_addf(&q->sql, " AND e.ticket_id = $%d::bigint", q->p.n);
    }
    if (f->actor != NULL) {
        struct ct_params p = {0};
        long long uid = 0;
        ct_param_str(&p, f->actor);
        PGresult *res = ct_tx_query(tx, "SELECT id FROM users WHERE name = $1", &p, err);
        if (res == NULL) {
            ct_buf_free(&q->sql);
            return err->rc;
        }
        if (PQntuples(res) == 1)
            uid = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (uid == 0) {
            ct_buf_adds(&q->sql, " AND false"); /* nobody by that name did anything */
        } else {
            ct_param_ll(&q->p, uid); /* staff actor ids are user ids as text */
            ct_buf_addf(&q->sql, " AND e.actor_type = '" CT_ACTOR_AGENT "' AND e.actor_id = $%d",
                        q->p.n);
        }
    }
    and_text(q, " AND e.action = $%d", f->action);
    and_text(q, " AND e.occurred_at >= $%d::timestamptz", f->from);
    and_text(q, " AND e.occurred_at < $%d::timestamptz", f->to);
    return CT_OK;
}

static bool event_row(const struct ct_export_sink *sink, const PGresult *res, int r)
{
    struct ct_export_event e = {
        ct_store_value(res, r, 0), ct_store_value(res, r, 1), ct_store_value(res, r, 2),
        ct_store_value(res, r, 3), ct_store_value(res, r, 4), ct_store_value(res, r, 5),
        ct_store_value(res, r, 6), ct_store_value(res, r, 7), ct_store_value(res, r, 8),
        ct_store_value(res, r, 9), ct_store_value(res, r, 10), ct_store_value(res, r, 11),
        ct_store_value(res, r, 12), ct_store_value(res, r, 13),
    };
    return sink->event(sink->arg, &e);
}

/* ---- streaming ---- */

typedef bool (*row_fn)(const struct ct_export_sink *sink, const PGresult *res, int row);

/* Makes the transaction read-only (first, as PostgreSQL requires: an export can change nothing)
 * with times in zone, and gives today's date there for the file name. */
static ct_rc stream_open(struct ct_tx *tx, const char *zone, char date[16], struct ct_err *err)
{
    struct ct_params none = {0};
    ct_rc rc = ct_tx_command(tx, "SET TRANSACTION READ ONLY", &none, err);
    if (rc == CT_OK)
        rc = ct_store_use_zone(tx, zone, err);
    if (rc != CT_OK)
        return rc;
    PGresult *res = ct_tx_query(tx, "SELECT to_char(now(), 'YYYYMMDD')", &none, err);
    if (res == NULL)
        return err->rc;
    ct_store_copy(date, 16, res, 0, 0);
    PQclear(res);
    return CT_OK;
}

/* Opens q (a DECLARE ct_export ...) and hands every row to the sink one batch at a time.
 * Memory stays one batch however many rows match, and the cursor goes with the transaction,
 * whichever way it ends. */
static ct_rc stream_rows(struct ct_tx *tx, struct query *q, const char *date,
                         const struct ct_export_sink *sink, row_fn row, bool *stopped,
                         struct ct_err *err)
{
    struct ct_params none = {0};
    bool begun = false;
    PGresult *res = query_run(tx, q, err);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    while (!*stopped) {
        res = ct_tx_query(tx, "FETCH " STR(CT_EXPORT_BATCH) " FROM ct_export", &none, err);
        if (res == NULL)
            return err->rc;
        int n = PQntuples(res);
        if (!begun) {
            begun = true;
            *stopped = !sink->begin(sink->arg, date);
        }
        for (int i = 0; i < n && !*stopped; i++)
            *stopped = !row(sink, res, i);
        PQclear(res);
        if (n < CT_EXPORT_BATCH)
            break;
    }
    return CT_OK;
}

ct_rc ct_store_export_approvals(struct ct_tx *tx, const char *zone,
                                const struct ct_approval_filter *f,
                                const struct ct_export_sink *sink, bool *stopped,
                                struct ct_err *err)
{
    char date[16] = "";
    struct query q;
    *stopped = false;
    ct_rc rc = stream_open(tx, zone, date, err);
    if (rc != CT_OK)
        return rc;
    query_start(&q, APPROVAL_EXPORT_SQL);
    approval_where(&q, f);
    ct_buf_adds(&q.sql, " ORDER BY a.id DESC");
    return stream_rows(tx, &q, date, sink, approval_row, stopped, err);
}

ct_rc ct_store_export_events(struct ct_tx *tx, const char *zone, const struct ct_event_filter *f,
                             const struct ct_export_sink *sink, bool *stopped,
                             struct ct_err *err)
{
    char date[16] = "";
    struct query q;
    *stopped = false;
    ct_rc rc = stream_open(tx, zone, date, err);
    if (rc != CT_OK)
        return rc;
    query_start(&q, EVENT_EXPORT_SQL);
    rc = event_where(tx, &q, f, err);
    if (rc != CT_OK)
        return rc;
    ct_buf_adds(&q.sql, " ORDER BY e.occurred_at, e.id");
    return stream_rows(tx, &q, date, sink, event_row, stopped, err);
}

/* ---- pages ---- */

/* Reads a page whose rows are (json text, at_us, id), fetched limit + 1 to learn whether more
 * follow; the next cursor names the last row given. */
static ct_rc page(struct ct_tx *tx, struct query *q, int limit, char tag, cJSON **out,
                  char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    *out = NULL;
    next_cursor[0] = '\0';
    ct_param_ll(&q->p, limit + 1);
    ct_buf_addf(&q->sql, " LIMIT $%d::int", q->p.n);
    PGresult *res = query_run(tx, q, err);
    if (res == NULL)
        return err->rc;
    int n = PQntuples(res);
    *out = cJSON_CreateArray();
    for (int i = 0; i < n && i < limit; i++) {
        cJSON *item = cJSON_Parse(PQgetvalue(res, i, 0));
        if (item == NULL) {
            PQclear(res);
            cJSON_Delete(*out);
            *out = NULL;
            return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode a stored row");
        }
        cJSON_AddItemToArray(*out, item);
    }
    if (n > limit) {
        struct ct_at_cursor c = {true, atoll(PQgetvalue(res, limit - 1, 1)),
                                 atoll(PQgetvalue(res, limit - 1, 2))};
        ct_cursor_at_encode(tag, &c, next_cursor);
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_events_page(struct ct_tx *tx, const struct ct_event_filter *f, cJSON **out,
                           char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    struct query q;
    query_start(&q, EVENT_PAGE_SQL);
    ct_rc rc = event_where(tx, &q, f, err);
    if (rc != CT_OK)
        return rc;
    if (f->cursor.set) {
        ct_param_ts(&q.p, true, f->cursor.at_us);
        ct_param_ll(&q.p, f->cursor.id);
        ct_buf_addf(&q.sql, " AND (e.occurred_at, e.id) > ($%d::timestamptz, $%d::bigint)",
                    q.p.n - 1, q.p.n);
    }
    ct_buf_adds(&q.sql, " ORDER BY e.occurred_at, e.id");
    return page(tx, &q, f->limit, 'e', out, next_cursor, err);
}

/* ---- the access log ---- */

ct_rc ct_store_access_log_add(struct ct_tx *tx, long long user_id, const char *what,
                              const char *filters_json, long long rows, bool complete,
                              struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, user_id);
    ct_param_str(&p, what);
    ct_param_str(&p, filters_json);
    ct_param_ll(&p, rows);
    ct_param_bool(&p, complete);
    return ct_tx_command(tx, "INSERT INTO access_log (user_id, what, filters, rows, complete)"
                             " VALUES ($1, $2, $3::jsonb, $4, $5)", &p, err);
}

#define ACCESS_PAGE_SQL                                                                       \
    "SELECT jsonb_build_object('id', l.id, 'at', " ISO_UTC("l.at") ", 'user', u.name,"        \
    " 'what', l.what, 'ticket_id', l.ticket_id, 'filters', l.filters, 'rows', l.rows,"        \
    " 'complete', l.complete)::text, " CT_SQL_US("l.at") ", l.id"                            \
    " FROM access_log l JOIN users u ON u.id = l.user_id WHERE true"

ct_rc ct_store_access_log_list(struct ct_tx *tx, const struct ct_access_filter *f, cJSON **out,
                               char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    struct query q;
    query_start(&q, ACCESS_PAGE_SQL);
    and_text(&q, " AND u.name = $%d", f->user);
    and_text(&q, " AND l.what = $%d", f->what);
    and_text(&q, " AND l.at >= $%d::timestamptz", f->from);
    and_text(&q, " AND l.at < $%d::timestamptz", f->to);
    if (f->cursor.set) {
        ct_param_ts(&q.p, true, f->cursor.at_us);
        ct_param_ll(&q.p, f->cursor.id);
        ct_buf_addf(&q.sql, " AND (l.at, l.id) < ($%d::timestamptz, $%d::bigint)", q.p.n - 1,
                    q.p.n);
    }
    ct_buf_adds(&q.sql, " ORDER BY l.at DESC, l.id DESC");
    return page(tx, &q, f->limit, 'g', out, next_cursor, err);
}
