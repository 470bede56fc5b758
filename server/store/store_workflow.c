/* store_workflow.c: queries behind ticket actions, approvals and complaint rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

ct_rc ct_store_ticket_set_assignee(struct ct_tx *tx, long long id, long long assignee_id,
                                   struct ct_err *err)
{
    struct ct_params p = {0};
    ct_preload_forget_ticket(tx, id);
    ct_param_ll(&p, id);
    ct_param_id(&p, assignee_id);
    return ct_tx_command(
        tx, "UPDATE tickets SET assignee_id = $2, updated_at = now() WHERE id = $1", &p, err);
}

ct_rc ct_store_ticket_set_escalation(struct ct_tx *tx, long long id, int level, bool complaint,
                                     struct ct_err *err)
{
    struct ct_params p = {0};
    ct_preload_forget_ticket(tx, id);
    ct_param_ll(&p, id);
    ct_param_ll(&p, level);
    ct_param_bool(&p, complaint);
    return ct_tx_command(tx, "UPDATE tickets SET escalation_level = $2, complaint_escalated = $3,"
                             " updated_at = now() WHERE id = $1", &p, err);
}

ct_rc ct_store_ticket_set_priority(struct ct_tx *tx, long long id, enum ct_priority priority,
                                   struct ct_err *err)
{
    struct ct_params p = {0};
    ct_preload_forget_ticket(tx, id);
    ct_param_ll(&p, id);
    ct_param_str(&p, ct_priority_name(priority));
    return ct_tx_command(tx, "UPDATE tickets SET priority = $2, updated_at = now() WHERE id = $1",
                         &p, err);
}

ct_rc ct_store_approval_insert(struct ct_tx *tx, struct ct_approval *a, const char *reason,
                               struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, a->ticket_id);
    ct_param_str(&p, ct_kind_name(a->kind));
    if (a->has_amount)
        ct_param_ll(&p, a->amount_minor);
    else
        ct_param_str(&p, NULL);
    ct_param_str(&p, a->currency[0] ? a->currency : NULL);
    ct_param_ll(&p, a->requested_by);
    ct_param_str(&p, reason);
    PGresult *res = ct_tx_query(tx,
                                "INSERT INTO approvals (ticket_id, kind, amount_minor, currency,"
                                " requested_by, requested_at, reason)"
                                " VALUES ($1, $2, $3, $4, $5, now(), $6) RETURNING id",
                                &p, err);
    if (res == NULL)
        return err->rc;
    a->id = atoll(PQgetvalue(res, 0, 0));
    a->status = CT_APPR_PENDING;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_approval_lock(struct ct_tx *tx, long long id, struct ct_approval *out,
                             struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    PGresult *res = ct_tx_query(tx,
                                "SELECT id, ticket_id, kind, amount_minor, coalesce(currency, ''),"
                                " status, requested_by FROM approvals WHERE id = $1 FOR UPDATE",
                                &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, "approval_not_found", "approval %lld not found", id);
    }
    memset(out, 0, sizeof(*out));
    out->id = atoll(PQgetvalue(res, 0, 0));
    out->ticket_id = atoll(PQgetvalue(res, 0, 1));
    out->kind = ct_kind_parse(PQgetvalue(res, 0, 2));
    out->has_amount = !PQgetisnull(res, 0, 3);
    out->amount_minor = out->has_amount ? atoll(PQgetvalue(res, 0, 3)) : 0;
    ct_store_copy(out->currency, sizeof(out->currency), res, 0, 4);
    out->status = ct_approval_status_parse(PQgetvalue(res, 0, 5));
    out->requested_by = atoll(PQgetvalue(res, 0, 6));
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_approval_decide(struct ct_tx *tx, long long id, enum ct_approval_status status,
                               long long decided_by, const char *reason, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_str(&p, ct_approval_status_name(status));
    ct_param_ll(&p, decided_by);
    ct_param_str(&p, reason);
    return ct_tx_command(tx,
                         "UPDATE approvals SET status = $2, decided_by = $3, decided_at = now(),"
                         " decision_reason = $4 WHERE id = $1 AND status = 'pending'",
                         &p, err);
}

#define ISO(col) CT_SQL_ISO_US(col)

#define APPROVAL_JSON                                                                        \
    "jsonb_build_object('id', a.id, 'ticket_id', a.ticket_id, 'kind', a.kind,"               \
    " 'amount_minor', a.amount_minor, 'currency', a.currency, 'status', a.status,"           \
    " 'requested_by', r.name, 'requested_at', " ISO("a.requested_at") ", 'reason', a.reason," \
    " 'decided_by', d.name, 'decided_at', " ISO("a.decided_at") ","                          \
    " 'decision_reason', a.decision_reason)::text"

#define APPROVAL_FROM                                                                        \
    " FROM approvals a JOIN users r ON r.id = a.requested_by"                                \
    " LEFT JOIN users d ON d.id = a.decided_by"

ct_rc ct_store_approval_get(struct ct_tx *tx, long long id, cJSON **out, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    *out = NULL;
    PGresult *res = ct_tx_query(tx, "SELECT " APPROVAL_JSON APPROVAL_FROM " WHERE a.id = $1", &p,
                                err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 1)
        *out = cJSON_Parse(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (*out == NULL)
        return ct_err_set(err, CT_E_NOT_FOUND, "approval_not_found", "approval %lld not found", id);
    return CT_OK;
}

ct_rc ct_store_approvals_list(struct ct_tx *tx, const struct ct_approval_filter *f, cJSON **out,
                              char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, f->status);
    ct_param_str(&p, f->kind);
    ct_param_str(&p, f->requested_by);
    ct_param_str(&p, f->decided_by);
    ct_param_str(&p, f->from);
    ct_param_str(&p, f->to);
    ct_param_id(&p, f->cursor.set ? f->cursor.id : 0);
    ct_param_ll(&p, f->limit + 1);
    *out = NULL;
    next_cursor[0] = '\0';
    PGresult *res = ct_tx_query(tx,
                               "SELECT " APPROVAL_JSON ", a.id" APPROVAL_FROM
                               " WHERE ($1::text IS NULL OR a.status = $1)"
                               " AND ($2::text IS NULL OR a.kind = $2)"
                               " AND ($3::text IS NULL OR r.name = $3)"
                               " AND ($4::text IS NULL OR d.name = $4)"
                               " AND ($5::timestamptz IS NULL OR a.requested_at >= $5::timestamptz)"
                               " AND ($6::timestamptz IS NULL OR a.requested_at < $6::timestamptz)"
                               " AND ($7::bigint IS NULL OR a.id < $7::bigint)"
                               " ORDER BY a.id DESC LIMIT $8::int",
                               &p, err);
    if (res == NULL)
        return err->rc;
    *out = cJSON_CreateArray();
    int n = PQntuples(res);
    for (int i = 0; i < n && i < f->limit; i++)
        cJSON_AddItemToArray(*out, cJSON_Parse(PQgetvalue(res, i, 0)));
    if (n > f->limit) {
        struct ct_id_cursor c = {true, atoll(PQgetvalue(res, f->limit - 1, 1))};
        ct_cursor_id_encode('a', &c, next_cursor);
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_rules_list(struct ct_tx *tx, cJSON **out, struct ct_err *err)
{
    *out = NULL;
    PGresult *res = ct_tx_exec(tx,
                               "SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'pattern',"
                               " pattern, 'match', match, 'enabled', enabled) ORDER BY id),"
                               " '[]'::jsonb)::text FROM complaint_rules",
                               0, NULL, err);
    if (res == NULL)
        return err->rc;
    *out = cJSON_Parse(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (*out == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode the rules");
    return CT_OK;
}

ct_rc ct_store_rules_replace(struct ct_tx *tx, const cJSON *rules, struct ct_err *err)
{
    const cJSON *r;
    ct_rc rc = ct_tx_exec0(tx, "DELETE FROM complaint_rules", 0, NULL, err);
    cJSON_ArrayForEach(r, rules)
    {
        if (rc != CT_OK)
            break;
        const char *pattern = cJSON_GetObjectItemCaseSensitive(r, "pattern")->valuestring;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "match");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(r, "enabled");
        const char *match = cJSON_IsString(m) ? m->valuestring : "keyword";
        const char *pv[] = {pattern, match, cJSON_IsFalse(en) ? "f" : "t"};
        if (strcmp(match, "regex") == 0) {
            /* compile it now: a broken pattern must be refused here, not at ingest time */
            rc = ct_tx_exec0(tx, "SELECT '' ~* $1", 1, pv, err);
            if (rc != CT_OK) {
                if (rc == CT_E_INVALID)
                    ct_err_set(err, CT_E_INVALID, "invalid_regex",
                               "pattern \"%.80s\" is not a valid regular expression", pattern);
                break;
            }
        }
        rc = ct_tx_exec0(
            tx, "INSERT INTO complaint_rules (pattern, match, enabled) VALUES ($1, $2, $3)", 3, pv,
            err);
    }
    return rc;
}

/* The first enabled rule each text matches, for a batched group's messages in one statement;
 * the same test as ct_store_rule_match's. */
/* lower() of each text and each pattern once, not once per (text, rule) pair: with about 40
 * rules it was most of the statement's time. */
#define RULES_SQL                                                                             \
    "WITH r AS MATERIALIZED (SELECT id, pattern, match, lower(pattern) AS lp FROM"            \
    " complaint_rules WHERE enabled), t AS MATERIALIZED (SELECT text, lower(text) AS lt, i"  \
    " FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY t (text, i))"                \
    " SELECT m.id, m.pattern FROM t LEFT JOIN LATERAL (SELECT id, pattern FROM r WHERE CASE"  \
    " r.match WHEN 'keyword' THEN strpos(t.lt, r.lp) > 0 ELSE t.text ~* r.pattern END"        \
    " ORDER BY id LIMIT 1) m ON true ORDER BY t.i"

bool ct_rules_step(struct ct_tx_step *st, const char *const *texts, size_t n)
{
    cJSON *arr = cJSON_CreateStringArray(texts, (int)n);
    return ct_tx_step_json(st, RULES_SQL, arr);
}

void ct_rules_read(struct ct_tx *tx, const PGresult *res, const char *const *texts, size_t n)
{
    for (int i = 0; i < PQntuples(res) && (size_t)i < n; i++)
        ct_defer_rule_add(tx->defer, texts[i],
                          PQgetisnull(res, i, 0) ? 0 : atoll(PQgetvalue(res, i, 0)),
                          PQgetisnull(res, i, 1) ? "" : PQgetvalue(res, i, 1));
}

ct_rc ct_store_rule_match(struct ct_tx *tx, const char *text, long long *rule_id,
                          char pattern[1024], struct ct_err *err)
{
    const char *pv[] = {text};
    *rule_id = 0;
    pattern[0] = '\0';
    if (tx->defer != NULL && ct_defer_rule_find(tx->defer, text, rule_id, pattern))
        return CT_OK; /* fetched with the rest of the group */
    PGresult *res =
        ct_tx_exec(tx,
                   "WITH t AS MATERIALIZED (SELECT lower($1::text) AS lt)"
                   " SELECT id, pattern FROM complaint_rules, t WHERE enabled AND"
                   " CASE match WHEN 'keyword' THEN strpos(t.lt, lower(pattern)) > 0"
                   " ELSE $1 ~* pattern END ORDER BY id LIMIT 1",
                   1, pv, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 1) {
        *rule_id = atoll(PQgetvalue(res, 0, 0));
        ct_store_copy(pattern, 1024, res, 0, 1);
    }
    PQclear(res);
    return CT_OK;
}
