/* store_reports.c: reports built by PostgreSQL, one statement per section of the summary (each
 * answers one JSON value), and one staff member's activity page by page. Every statement takes
 * the same three parameters: $1 from, $2 to ([from, to), bare dates read in the transaction's
 * zone) and $3 the business number or NULL. Zone days come from date_trunc in the session's
 * TimeZone, set for the transaction only (ct_store_use_zone): docs/DECISIONS.md#reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/store_export.h"
#include "casetrail/store_reports.h"
#include "store_internal.h"

#define IN_RANGE(col) " " col " >= $1::timestamptz AND " col " < $2::timestamptz"
#define FOR_NUMBER(col) " ($3::text IS NULL OR " col " = $3::text)"
/* Ticket events in the range, said so the planner can use the partial index events_occurred
 * (occurred_at, id) WHERE ticket_id IS NOT NULL (migration 0014): a join to tickets implies it,
 * but a partial index is only chosen when the query states its condition. */
#define TICKET_EVENTS_IN_RANGE " e.ticket_id IS NOT NULL AND" IN_RANGE("e.occurred_at")
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- sections: each a statement answering one JSON text ---- */

/* Ticket events in the range: created, resolved and closed by people (status.changed), and
 * reopened either by the customer writing again (ticket.reopened) or by staff (resolved ->
 * open). */
#define TICKETS_SQL                                                                             \
    "SELECT jsonb_build_object("                                                                \
    " 'created', count(*) FILTER (WHERE e.action = '" CT_EV_TICKET_CREATED "'),"                \
    " 'resolved', count(*) FILTER (WHERE e.action = '" CT_EV_STATUS "'"                         \
    " AND e.to_value = 'resolved'),"                                                            \
    " 'closed', count(*) FILTER (WHERE e.action = '" CT_EV_STATUS "' AND e.to_value = 'closed'),"\
    " 'reopened', count(*) FILTER (WHERE e.action = '" CT_EV_TICKET_REOPENED "'"                \
    " OR (e.action = '" CT_EV_STATUS "' AND e.from_value = 'resolved'"                          \
    " AND e.to_value = 'open')))::text"                                                         \
    " FROM events e JOIN tickets t ON t.id = e.ticket_id"                                       \
    " WHERE e.action IN ('" CT_EV_TICKET_CREATED "', '" CT_EV_TICKET_REOPENED "', '"            \
    CT_EV_STATUS "') AND" TICKET_EVENTS_IN_RANGE " AND" FOR_NUMBER("t.phone_number_id")

/* Over the tickets created in the range (their ticket.created event, whose time is the
 * WhatsApp time of the opening message: tickets.created_at is when casetrail stored it): seconds
 * to the first reply or echo (tickets.first_response_at), and to the first time staff resolved
 * or closed it. Tickets not answered or not resolved yet are counted apart, not in the
 * percentiles. */
#define STATS(col)                                                                              \
    "jsonb_build_object('count', count(" col "),"                                               \
    " 'median', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY " col "))::numeric, 3),"     \
    " 'p90', round((percentile_cont(0.9) WITHIN GROUP (ORDER BY " col "))::numeric, 3))"
#define TIMES_SQL                                                                               \
    "WITH c AS (SELECT extract(epoch FROM t.first_response_at - e.occurred_at)::float8 AS fr,"  \
    " extract(epoch FROM (SELECT min(s.occurred_at) FROM events s WHERE s.ticket_id = t.id"     \
    " AND s.action = '" CT_EV_STATUS "' AND s.to_value IN ('resolved', 'closed'))"              \
    " - e.occurred_at)::float8 AS rs"                                                           \
    " FROM events e JOIN tickets t ON t.id = e.ticket_id"                                       \
    " WHERE e.action = '" CT_EV_TICKET_CREATED "' AND" TICKET_EVENTS_IN_RANGE " AND"            \
    FOR_NUMBER("t.phone_number_id") ")"                                                         \
    " SELECT jsonb_build_object('tickets', count(*), 'first_response_seconds', " STATS("fr") "," \
    " 'resolution_seconds', " STATS("rs") ")::text FROM c"

/* Escalations raised and lowered in the range; raised ones by the level reached, by complaint
 * rule (automatic: data.rule_id) and by hand. */
#define ESCALATIONS_SQL                                                                         \
    "WITH x AS (SELECT e.action, e.actor_type, e.to_value, e.data FROM events e"                \
    " JOIN tickets t ON t.id = e.ticket_id WHERE e.action IN ('" CT_EV_ESC_RAISED "', '"        \
    CT_EV_ESC_LOWERED "') AND" TICKET_EVENTS_IN_RANGE " AND"                                    \
    FOR_NUMBER("t.phone_number_id") "), r AS (SELECT * FROM x WHERE action = '"                 \
    CT_EV_ESC_RAISED "')"                                                                       \
    " SELECT jsonb_build_object('raised', (SELECT count(*) FROM r),"                            \
    " 'lowered', (SELECT count(*) FROM x WHERE action = '" CT_EV_ESC_LOWERED "'),"              \
    " 'manual', (SELECT count(*) FROM r WHERE actor_type = '" CT_ACTOR_AGENT "'),"              \
    " 'by_level', coalesce((SELECT jsonb_object_agg(to_value, n) FROM (SELECT to_value,"        \
    " count(*) AS n FROM r GROUP BY to_value) l), '{}'::jsonb),"                                \
    " 'by_rule', coalesce((SELECT jsonb_agg(jsonb_build_object('rule_id', s.rule_id,"           \
    " 'pattern', cr.pattern, 'count', s.n) ORDER BY s.n DESC, s.rule_id) FROM (SELECT"          \
    " (data->>'rule_id')::bigint AS rule_id, count(*) AS n FROM r WHERE data ? 'rule_id'"       \
    " GROUP BY 1) s LEFT JOIN complaint_rules cr ON cr.id = s.rule_id), '[]'::jsonb))::text"

/* Approvals requested in the range (as the approvals export filters them), by kind, decision
 * and currency, amounts summed in minor units. */
#define APPROVALS_SQL                                                                           \
    "SELECT coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'decision', status,"            \
    " 'count', n, 'amount_minor', amount, 'currency', currency)"                                \
    " ORDER BY kind, status, currency), '[]'::jsonb)::text FROM (SELECT a.kind, a.status,"      \
    " a.currency, count(*) AS n, coalesce(sum(a.amount_minor), 0) AS amount FROM approvals a"   \
    " JOIN tickets t ON t.id = a.ticket_id WHERE" IN_RANGE("a.requested_at") " AND"             \
    FOR_NUMBER("t.phone_number_id") " GROUP BY 1, 2, 3) s"

/* Per staff member, one fact a row (uid, kind, ticket). A ticket is handled by whoever acted on
 * it in the range, was assigned it in the range, or held it at the range's start while it was
 * still live; a hand-off is an assignment moving a ticket from one person to another, given by
 * the first and received by the second, whoever made it. */
#define AGENTS_SQL                                                                              \
    "WITH ev AS (SELECT e.id, e.ticket_id, e.action, e.actor_type, e.actor_id, e.from_value,"   \
    " e.to_value FROM events e JOIN tickets t ON t.id = e.ticket_id WHERE"                      \
    TICKET_EVENTS_IN_RANGE " AND" FOR_NUMBER("t.phone_number_id") "),"                       \
    " held AS (SELECT s.uid, s.ticket_id FROM (SELECT DISTINCT ON (e.ticket_id) e.ticket_id,"   \
    " e.to_value AS uid FROM events e JOIN tickets t ON t.id = e.ticket_id"                     \
    " WHERE e.action = '" CT_EV_ASSIGNMENT "' AND e.occurred_at < $1::timestamptz AND"          \
    FOR_NUMBER("t.phone_number_id") " ORDER BY e.ticket_id, e.occurred_at DESC, e.id DESC) s"   \
    " WHERE s.uid IS NOT NULL AND coalesce((SELECT e2.to_value FROM events e2"                  \
    " WHERE e2.ticket_id = s.ticket_id AND e2.action IN ('" CT_EV_TICKET_CREATED "', '"         \
    CT_EV_TICKET_REOPENED "', '" CT_EV_STATUS "') AND e2.occurred_at < $1::timestamptz"         \
    " ORDER BY e2.occurred_at DESC, e2.id DESC LIMIT 1), 'new') NOT IN ('resolved', 'closed')),"\
    " facts AS ("                                                                               \
    " SELECT actor_id AS uid, 'handled' AS kind, ticket_id FROM ev"                             \
    " WHERE actor_type = '" CT_ACTOR_AGENT "'"                                                  \
    " UNION ALL SELECT to_value, 'handled', ticket_id FROM ev"                                  \
    " WHERE action = '" CT_EV_ASSIGNMENT "' AND to_value IS NOT NULL"                           \
    " UNION ALL SELECT uid, 'handled', ticket_id FROM held"                                     \
    " UNION ALL SELECT actor_id, 'reply', id FROM ev WHERE actor_type = '" CT_ACTOR_AGENT "'"   \
    " AND action = '" CT_EV_MESSAGE_QUEUED "'"                                                  \
    " UNION ALL SELECT actor_id, 'note', id FROM ev WHERE actor_type = '" CT_ACTOR_AGENT "'"    \
    " AND action = '" CT_EV_NOTE "'"                                                            \
    " UNION ALL SELECT from_value, 'given', id FROM ev WHERE action = '" CT_EV_ASSIGNMENT "'"   \
    " AND from_value IS NOT NULL AND to_value IS NOT NULL AND from_value <> to_value"           \
    " UNION ALL SELECT to_value, 'received', id FROM ev WHERE action = '" CT_EV_ASSIGNMENT "'"  \
    " AND from_value IS NOT NULL AND to_value IS NOT NULL AND from_value <> to_value"           \
    " UNION ALL SELECT a.requested_by::text, 'requested', a.id FROM approvals a"                \
    " JOIN tickets t ON t.id = a.ticket_id WHERE" IN_RANGE("a.requested_at") " AND"             \
    FOR_NUMBER("t.phone_number_id")                                                             \
    " UNION ALL SELECT a.decided_by::text, a.status, a.id FROM approvals a"                     \
    " JOIN tickets t ON t.id = a.ticket_id WHERE a.decided_by IS NOT NULL AND"                  \
    IN_RANGE("a.decided_at") " AND" FOR_NUMBER("t.phone_number_id") "),"                        \
    " per AS (SELECT uid,"                                                                      \
    " count(DISTINCT ticket_id) FILTER (WHERE kind = 'handled') AS handled,"                    \
    " count(*) FILTER (WHERE kind = 'reply') AS replies,"                                       \
    " count(*) FILTER (WHERE kind = 'note') AS notes,"                                          \
    " count(*) FILTER (WHERE kind = 'given') AS given,"                                         \
    " count(*) FILTER (WHERE kind = 'received') AS received,"                                   \
    " count(*) FILTER (WHERE kind = 'requested') AS requested,"                                 \
    " count(*) FILTER (WHERE kind = 'approved') AS approved,"                                   \
    " count(*) FILTER (WHERE kind = 'denied') AS denied FROM facts GROUP BY uid)"               \
    " SELECT coalesce(jsonb_agg(jsonb_build_object('user', u.name, 'role', u.role,"             \
    " 'tickets_handled', p.handled, 'replies', p.replies, 'notes', p.notes,"                    \
    " 'handoffs_given', p.given, 'handoffs_received', p.received,"                              \
    " 'approvals_requested', p.requested, 'approvals_approved', p.approved,"                    \
    " 'approvals_denied', p.denied) ORDER BY u.name), '[]'::jsonb)::text"                       \
    " FROM per p JOIN users u ON u.id::text = p.uid"

/* Messages sent in the range (WhatsApp's send time; a reply's queueing time), by direction. */
#define MESSAGES_SQL                                                                            \
    "SELECT jsonb_build_object('in', count(*) FILTER (WHERE m.direction = 'in'),"               \
    " 'out', count(*) FILTER (WHERE m.direction = 'out'))::text FROM messages m"                \
    " JOIN contacts c ON c.id = m.contact_id WHERE" IN_RANGE("m.sent_at") " AND"                \
    FOR_NUMBER("c.phone_number_id")

/* What WhatsApp bills, from the status webhooks in the range: each stored status is found again
 * in its raw receipt (the columns keep no pricing) and its pricing.category and conversation.id
 * read there. Read as json, not jsonb: a receipt may hold \u0000 elsewhere, which jsonb refuses.
 * A part that is not an array is skipped rather than failing the report. */
#define ARRAY(x) "CASE WHEN json_typeof(" x ") = 'array' THEN " x " END"
#define PRICING_SQL                                                                             \
    "WITH s AS (SELECT ms.id, st.value AS st FROM message_statuses ms"                          \
    " JOIN messages m ON m.id = ms.message_id JOIN contacts c ON c.id = m.contact_id"           \
    " JOIN webhook_receipts r ON r.id = ms.receipt_id"                                          \
    " CROSS JOIN LATERAL json_array_elements(" ARRAY("convert_from(r.body, 'UTF8')::json"       \
    " -> 'entry'") ") en"                                                                       \
    " CROSS JOIN LATERAL json_array_elements(" ARRAY("en.value -> 'changes'") ") ch"            \
    " CROSS JOIN LATERAL json_array_elements(" ARRAY("ch.value -> 'value' -> 'statuses'") ") st"\
    " WHERE r.body IS NOT NULL AND" IN_RANGE("ms.occurred_at") " AND"                           \
    FOR_NUMBER("c.phone_number_id")                                                             \
    " AND st.value ->> 'id' = ms.wamid AND st.value ->> 'status' = ms.status)"                  \
    " SELECT coalesce(jsonb_agg(jsonb_build_object('category', cat, 'conversations', conv,"     \
    " 'statuses', n) ORDER BY cat), '[]'::jsonb)::text FROM (SELECT"                            \
    " st -> 'pricing' ->> 'category' AS cat,"                                                   \
    " count(DISTINCT st -> 'conversation' ->> 'id') AS conv, count(DISTINCT id) AS n FROM s"    \
    " WHERE st -> 'pricing' ->> 'category' IS NOT NULL GROUP BY 1) g"

/* Tickets created per day of the zone, every day of the range listed (zeros included). */
#define BY_DAY_SQL                                                                              \
    "WITH c AS (SELECT date_trunc('day', e.occurred_at) AS d, count(*) AS n FROM events e"      \
    " JOIN tickets t ON t.id = e.ticket_id WHERE e.action = '" CT_EV_TICKET_CREATED "' AND"     \
    TICKET_EVENTS_IN_RANGE " AND" FOR_NUMBER("t.phone_number_id") " GROUP BY 1)"             \
    " SELECT coalesce(jsonb_agg(jsonb_build_object('day', to_char(g.d, 'YYYY-MM-DD'),"          \
    " 'created', coalesce(c.n, 0)) ORDER BY g.d), '[]'::jsonb)::text"                           \
    " FROM generate_series(date_trunc('day', $1::timestamptz),"                                 \
    " $2::timestamptz - interval '1 microsecond', interval '1 day') g(d)"                       \
    " LEFT JOIN c ON c.d = g.d"

/* The range as it was read, in UTC with Z like every API time. */
#define RANGE_SQL                                                                               \
    "SELECT jsonb_build_object('from', " CT_SQL_ISO_US("$1::timestamptz") ","                  \
    " 'to', " CT_SQL_ISO_US("$2::timestamptz") ", 'phone_number_id', $3::text)::text"

static void range_params(struct ct_params *p, const struct ct_report_range *r)
{
    memset(p, 0, sizeof(*p));
    ct_param_str(p, r->from);
    ct_param_str(p, r->to);
    ct_param_str(p, r->phone_number_id);
}

ct_rc ct_store_report_begin(struct ct_tx *tx, const char *zone, const struct ct_report_range *r,
                            struct ct_err *err)
{
    struct ct_params p, none = {0};
    ct_rc rc = ct_tx_command(tx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", &none, err);
    if (rc == CT_OK)
        rc = ct_store_use_zone(tx, zone, err);
    if (rc != CT_OK)
        return rc;
    range_params(&p, r);
    PGresult *res = ct_tx_query(tx,
                                "SELECT $1::timestamptz > $2::timestamptz, $2::timestamptz -"
                                " $1::timestamptz > interval '" STR(CT_REPORT_MAX_DAYS) " days',"
                                " $3::text",
                                &p, err);
    if (res == NULL)
        return err->rc;
    bool reversed = PQgetvalue(res, 0, 0)[0] == 't', too_long = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (reversed)
        return ct_err_set(err, CT_E_INVALID, "range_reversed", "from must not be after to");
    if (too_long)
        return ct_err_set(err, CT_E_INVALID, "range_too_long",
                          "a report covers at most " STR(CT_REPORT_MAX_DAYS) " days");
    return CT_OK;
}

/* Runs one section's statement and adds its JSON to out under name. */
static ct_rc section(struct ct_tx *tx, const struct ct_report_range *r, const char *sql,
                     cJSON *out, const char *name, struct ct_err *err)
{
    struct ct_params p;
    range_params(&p, r);
    PGresult *res = ct_tx_query(tx, sql, &p, err);
    if (res == NULL)
        return err->rc;
    cJSON *v = PQntuples(res) == 1 ? cJSON_Parse(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    if (v == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode a report section");
    if (name == NULL) { /* the range itself: its members go to the top */
        cJSON *m = v->child;
        while (m != NULL) {
            cJSON *next = m->next;
            cJSON_AddItemToObject(out, m->string, cJSON_DetachItemViaPointer(v, m));
            m = next;
        }
        cJSON_Delete(v);
    } else {
        cJSON_AddItemToObject(out, name, v);
    }
    return CT_OK;
}

ct_rc ct_store_report_summary(struct ct_tx *tx, const struct ct_report_range *r, cJSON **out,
                              struct ct_err *err)
{
    static const struct {
        const char *name, *sql;
    } sections[] = {
        {NULL, RANGE_SQL},
        {"tickets", TICKETS_SQL},
        {"times", TIMES_SQL},
        {"escalations", ESCALATIONS_SQL},
        {"approvals", APPROVALS_SQL},
        {"agents", AGENTS_SQL},
        {"messages", MESSAGES_SQL},
        {"conversations", PRICING_SQL},
        {"by_day", BY_DAY_SQL},
    };
    ct_rc rc = CT_OK;
    *out = cJSON_CreateObject();
    if (*out == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]) && rc == CT_OK; i++)
        rc = section(tx, r, sections[i].sql, *out, sections[i].name, err);
    if (rc != CT_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- activity ---- */

/* The person's events after the cursor, at most $6: ticket events along events_occurred
 * (which needs ticket_id IS NOT NULL stated), user events (staff administration, few) apart. */
#define ACTIVITY_BRANCH(chain)                                                                  \
    "(SELECT * FROM events e WHERE e.ticket_id IS " chain " AND"                                \
    " e.actor_type = '" CT_ACTOR_AGENT "' AND e.actor_id = $3::text AND"                        \
    IN_RANGE("e.occurred_at")                                                                   \
    " AND ($4::bigint IS NULL OR (e.occurred_at, e.id) > ($5::timestamptz, $4::bigint))"        \
    " ORDER BY e.occurred_at, e.id LIMIT $6::int)"
/* An action as the coaching page shows it: the timeline's from/to (user names for
 * assignments), the reason and note the person wrote (never a reply's body: that is the
 * conversation, read on the ticket), and the event's data (an approval's kind and amount). */
#define ACTIVITY_SQL                                                                            \
    "SELECT jsonb_build_object('id', e.id, 'ticket_id', e.ticket_id, 'action', e.action,"       \
    " 'at', " CT_SQL_ISO_US("e.occurred_at") ","                                                \
    " 'from', CASE WHEN e.action = '" CT_EV_ASSIGNMENT "' THEN (SELECT u.name FROM users u"     \
    " WHERE u.id::text = e.from_value) ELSE e.from_value END,"                                  \
    " 'to', CASE WHEN e.action = '" CT_EV_ASSIGNMENT "' THEN (SELECT u.name FROM users u"       \
    " WHERE u.id::text = e.to_value) ELSE e.to_value END,"                                      \
    " 'reason', x.reason, 'note', x.note, 'data', e.data)::text,"                               \
    " " CT_SQL_US("e.occurred_at") ", e.id"                                                     \
    " FROM (" ACTIVITY_BRANCH("NOT NULL") " UNION ALL " ACTIVITY_BRANCH("NULL") ") e"           \
    " LEFT JOIN LATERAL (SELECT max(t.body) FILTER (WHERE t.field = 'reason') AS reason,"       \
    " max(t.body) FILTER (WHERE t.field = 'note') AS note FROM event_texts t"                   \
    " WHERE t.event_id = e.id AND t.field IN ('reason', 'note')) x ON true"                     \
    " ORDER BY e.occurred_at, e.id LIMIT $6::int"

ct_rc ct_store_activity_page(struct ct_tx *tx, long long user_id, const struct ct_report_range *r,
                             int limit, const struct ct_at_cursor *cursor, cJSON **out,
                             char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    struct ct_params p = {0};
    char uid[24];
    *out = NULL;
    next_cursor[0] = '\0';
    snprintf(uid, sizeof(uid), "%lld", user_id); /* staff actor ids are user ids as text */
    ct_param_str(&p, r->from);
    ct_param_str(&p, r->to);
    ct_param_str(&p, uid);
    if (cursor->set)
        ct_param_ll(&p, cursor->id);
    else
        ct_param_str(&p, NULL);
    ct_param_ts(&p, cursor->set, cursor->at_us);
    ct_param_ll(&p, limit + 1);
    PGresult *res = ct_tx_query(tx, ACTIVITY_SQL, &p, err);
    if (res == NULL)
        return err->rc;
    int n = PQntuples(res);
    *out = cJSON_CreateArray();
    for (int i = 0; i < n && i < limit && *out != NULL; i++) {
        cJSON *item = cJSON_Parse(PQgetvalue(res, i, 0));
        if (item == NULL) {
            cJSON_Delete(*out);
            *out = NULL;
        } else {
            cJSON_AddItemToArray(*out, item);
        }
    }
    if (*out != NULL && n > limit) {
        struct ct_at_cursor c = {true, atoll(PQgetvalue(res, limit - 1, 1)),
                                 atoll(PQgetvalue(res, limit - 1, 2))};
        ct_cursor_at_encode('v', &c, next_cursor);
    }
    PQclear(res);
    if (*out == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode a stored row");
    return CT_OK;
}
