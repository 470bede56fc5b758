/* store_tickets.c: ticket rows (lock, create, change) and the read model of tickets, which
 * PostgreSQL builds as JSON in the API's shape (a ticket's timeline: store_timeline.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store_internal.h"

#define REF_COLS                                                                              \
    "id, status, coalesce(assignee_id, 0), escalation_level, priority, complaint_escalated"

void ct_store_ticket_ref_from_row(const PGresult *res, int row, int off,
                                  struct ct_ticket_ref *out)
{
    out->id = atoll(PQgetvalue(res, row, off));
    out->status = ct_status_parse(PQgetvalue(res, row, off + 1));
    out->assignee_id = atoll(PQgetvalue(res, row, off + 2));
    out->escalation_level = atoi(PQgetvalue(res, row, off + 3));
    out->priority = ct_priority_parse(PQgetvalue(res, row, off + 4));
    out->complaint_escalated = strcmp(PQgetvalue(res, row, off + 5), "t") == 0;
}

static void row_to_ref(const PGresult *res, struct ct_ticket_ref *out)
{
    ct_store_ticket_ref_from_row(res, 0, 0, out);
}

/* The live ticket, after whether the message's wamid is stored: one statement, run under the
 * contact's row lock, which every transaction storing a message of this contact holds, so
 * the check sees any such message that committed. In a batched transaction the ticket's row
 * lock is also its chain's: the same statement reads the chain head and the contact's text
 * salt (the scope of a customer's message event) and takes the digest's shared lock, as the
 * event append would one round trip later. Columns: known, REF_COLS, then (batched) last_seq,
 * chain_head, the lock, the salt. */
#define LIVE_SQL(chain)                                                                       \
    "SELECT (SELECT true FROM messages m WHERE m.wamid = $2 LIMIT 1), t.* FROM (VALUES (1)) v" \
    " LEFT JOIN LATERAL (SELECT " REF_COLS chain " FROM tickets WHERE contact_id = $1::bigint" \
    " AND status <> 'closed' FOR UPDATE) t ON true"
#define LIVE_CHAIN_COLS                                                                       \
    ", last_seq, chain_head, pg_advisory_xact_lock_shared(" CT_DIGEST_LOCK "),"               \
    " (SELECT salt FROM text_salts WHERE scope = 'contact:' || $1::bigint) AS salt"

void ct_store_keep_chain(struct ct_tx *tx, long long ticket_id, long long contact_id,
                         const PGresult *res, int row, int seq_col, int head_col, int salt_col)
{
    unsigned char head[CT_HASH_LEN], salt[CT_SALT_LEN];
    char scope[48];
    if (ct_defer_chain_find(tx->defer, true, ticket_id) >= 0)
        return; /* already locked here, with a head newer than the table's */
    if (!ct_store_bytea(res, row, head_col, head, CT_HASH_LEN))
        memset(head, 0, CT_HASH_LEN);
    ct_defer_chain_add(tx->defer, true, ticket_id, atoll(PQgetvalue(res, row, seq_col)), head);
    snprintf(scope, sizeof(scope), "contact:%lld", contact_id);
    if (ct_store_bytea(res, row, salt_col, salt, CT_SALT_LEN))
        ct_defer_salt_add(tx->defer, scope, salt);
    OPENSSL_cleanse(salt, sizeof(salt));
}

ct_rc ct_store_ticket_live(struct ct_tx *tx, long long contact_id, const char *wamid,
                           struct ct_ticket_ref *out, bool *known, struct ct_err *err)
{
    struct ct_params p = {0};
    memset(out, 0, sizeof(*out));
    *known = false;
    if (wamid != NULL && tx->defer != NULL && ct_defer_has_wamid(tx->defer, wamid)) {
        *known = true; /* held back by this batched transaction */
        return CT_OK;
    }
    if (ct_preload_live(tx, contact_id, wamid, out, known))
        return CT_OK; /* locked with the rest of its group */
    ct_param_ll(&p, contact_id);
    ct_param_str(&p, wamid);
    PGresult *res = ct_tx_query(tx, tx->defer != NULL ? LIVE_SQL(LIVE_CHAIN_COLS) : LIVE_SQL(""),
                                &p, err);
    if (res == NULL)
        return err->rc;
    *known = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
        ct_store_ticket_ref_from_row(res, 0, 1, out);
        if (tx->defer != NULL)
            ct_store_keep_chain(tx, out->id, contact_id, res, 0, 7, 8, 10);
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_ticket_lock(struct ct_tx *tx, long long id, struct ct_ticket_ref *out,
                           struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    PGresult *res = ct_tx_query(tx, "SELECT " REF_COLS " FROM tickets WHERE id = $1 FOR UPDATE",
                                &p, err);
    if (res == NULL)
        return err->rc;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, "ticket_not_found", "ticket %lld not found", id);
    }
    row_to_ref(res, out);
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_ticket_create(struct ct_tx *tx, long long contact_id, const char *phone_number_id,
                             long long *id, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_preload_forget_live(tx, contact_id); /* it has a live ticket now */
    ct_param_ll(&p, contact_id);
    ct_param_str(&p, phone_number_id);
    PGresult *res = ct_tx_query(tx, "INSERT INTO tickets (contact_id, phone_number_id, created_at,"
                                    " updated_at) VALUES ($1, $2, now(), now()) RETURNING id",
                                &p, err);
    if (res == NULL)
        return err->rc;
    *id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_ticket_set_status(struct ct_tx *tx, long long id, enum ct_status status,
                                 struct ct_err *err)
{
    struct ct_params p = {0};
    ct_preload_forget_ticket(tx, id);
    ct_param_ll(&p, id);
    ct_param_str(&p, ct_status_name(status));
    return ct_tx_command(tx, "UPDATE tickets SET status = $2, updated_at = now() WHERE id = $1",
                         &p, err);
}

ct_rc ct_store_ticket_touch(struct ct_tx *tx, long long id, long long message_us,
                            struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_ts(&p, message_us != 0, message_us);
    return ct_tx_command(tx, "UPDATE tickets SET updated_at = now(), last_message_at ="
                             " CASE WHEN $2::timestamptz IS NULL THEN last_message_at"
                             " ELSE greatest(last_message_at, $2::timestamptz) END WHERE id = $1",
                         &p, err);
}

/* ---- read models ---- */

#define ISO(col) CT_SQL_ISO_US(col)
#define US(col) CT_SQL_US(col)

#define TICKET_JSON                                                                          \
    "jsonb_build_object('id', t.id, 'status', t.status, 'assignee', u.name,"                 \
    " 'escalated', t.escalation_level > 0, 'escalation_level', t.escalation_level,"          \
    " 'priority', t.priority, 'contact', jsonb_build_object('wa_id', c.wa_id,"                \
    " 'user_id', c.user_id, 'username', c.username, 'name', c.name,"                          \
    " 'phone_number_id', c.phone_number_id), 'created_at', " ISO("t.created_at") ","         \
    " 'updated_at', " ISO("t.updated_at") ", 'last_message_at', " ISO("t.last_message_at") "," \
    " 'first_response_at', " ISO("t.first_response_at") ")"

#define TICKET_FROM                                                                          \
    " FROM tickets t JOIN contacts c ON c.id = t.contact_id"                                  \
    " LEFT JOIN users u ON u.id = t.assignee_id"

/* Appends each row's column col (JSON text) to arr. */
/* Rows [first, end) of column 0, each a JSON text, onto arr. */
static ct_rc rows_to_array(const PGresult *res, int first, int end, cJSON *arr, struct ct_err *err)
{
    int n = PQntuples(res);
    for (int i = first; i < n && i < end; i++) {
        const int col = 0;
        cJSON *item = cJSON_Parse(PQgetvalue(res, i, col));
        if (item == NULL)
            return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode a stored row");
        cJSON_AddItemToArray(arr, item);
    }
    return CT_OK;
}

/* Every filter but status, the search and the cursor, on $1..$6, $8, $9 (see filter_params):
 * shared by the page and the counts per status, so the two can never disagree; the search
 * ($7) is the same rule written twice for the two access paths, and test_queue checks both. */
#define TICKET_FILTERS                                                                        \
    " ($1::text IS NULL OR ($1 = 'none' AND t.assignee_id IS NULL) OR u.name = $1)"          \
    " AND ($2::int IS NULL OR (t.escalation_level > 0) = ($2::int = 1))"                      \
    " AND ($3::text IS NULL OR c.wa_id = $3 OR c.user_id = $3"                                \
    /* an id the customer changed away from still finds them */                              \
    "      OR c.id IN (SELECT k.merged_into FROM contacts k WHERE"                            \
    "       k.phone_number_id = c.phone_number_id AND (k.wa_id = $3"                          \
    "       OR k.user_id = $3))"                                                              \
    "      OR lower(c.username) IN (lower($3), '@' || lower($3))"                             \
    "      OR strpos(lower(coalesce(c.name, '')), lower($3)) > 0)"                            \
    " AND ($4::text IS NULL OR t.priority = $4)"                                              \
    /* IN, not EXISTS per ticket: one pass over the pending approvals (235 -> 35 ms counts) */ \
    " AND ($5::int IS NULL OR (t.id IN (SELECT a.ticket_id FROM approvals a"                  \
    "      WHERE a.status = 'pending')) = ($5::int = 1))"                                     \
    " AND ($6::text IS NULL OR c.phone_number_id = $6)"                                       \
    /* activity in a range: every message, reply and action records an event */              \
    " AND ($8::timestamptz IS NULL AND $9::timestamptz IS NULL OR t.id IN (SELECT"            \
    "      a.ticket_id FROM events a WHERE a.ticket_id IS NOT NULL AND a.occurred_at >="      \
    "      coalesce($8::timestamptz, '-infinity') AND a.occurred_at <"                        \
    "      coalesce($9::timestamptz, 'infinity')))"

/* Search for a page: the longest word narrows by the trigram index, then every word must
 * appear; the page walks tickets by activity and stops at the limit. */
#define PAGE_SEARCH                                                                           \
    " AND ($7::text IS NULL OR (t.id IN (SELECT m.ticket_id FROM messages m WHERE m.body"     \
    "      ILIKE (SELECT p FROM words ORDER BY n DESC LIMIT 1))"                              \
    "      AND NOT EXISTS (SELECT 1 FROM words w WHERE NOT EXISTS (SELECT 1 FROM messages m"  \
    "      WHERE m.ticket_id = t.id AND m.body ILIKE w.p))))"

/* Search for the counts, which see every match: each word's tickets once, from the trigram
 * index, kept when they have all the words (at 100,000 tickets: 0.2-0.45 s -> 0.07-0.22 s) */
#define COUNT_SEARCH                                                                          \
    " AND ($7::text IS NULL OR t.id IN (SELECT m.ticket_id FROM words w JOIN messages m"      \
    "      ON m.body ILIKE w.p GROUP BY m.ticket_id"                                          \
    "      HAVING count(DISTINCT w.p) = (SELECT count(DISTINCT p) FROM words)))"

/* The search words as ILIKE patterns, their own wildcards escaped. */
#define SEARCH_WORDS                                                                          \
    "WITH words AS (SELECT '%' || replace(replace(replace(w, '\\', '\\\\'), '%', '\\%'),"     \
    " '_', '\\_') || '%' AS p, length(w) AS n"                                                \
    /* unnest of an array, not regexp_split_to_table: planned as the few words it is */    \
    " FROM unnest(regexp_split_to_array(coalesce($7::text, ''), '\\s+')) w WHERE w <> '') "

static void filter_params(struct ct_params *p, const struct ct_ticket_filter *f)
{
    ct_param_str(p, f->assignee);
    if (f->escalated >= 0)
        ct_param_ll(p, f->escalated);
    else
        ct_param_str(p, NULL);
    ct_param_str(p, f->contact);
    ct_param_str(p, f->priority);
    if (f->pending_approval >= 0)
        ct_param_ll(p, f->pending_approval);
    else
        ct_param_str(p, NULL);
    ct_param_str(p, f->phone_number_id);
    ct_param_str(p, f->q);
    ct_param_str(p, f->active_from);
    ct_param_str(p, f->active_to);
}

/* The activity range as two ISO timestamps (from and to are CT_CURSOR_MAX-sized; "" is open):
 * the days f->active names, or f->active_from/active_to with a bare date taken as midnight in
 * f->timezone. Worked out by PostgreSQL, which knows the zone's history (the process's TZ is
 * shared by every thread). */
static ct_rc activity_range(struct ct_tx *tx, const struct ct_ticket_filter *f, char *from,
                            char *to, struct ct_err *err)
{
    struct ct_params p = {0};
    bool date = f->active != NULL && strlen(f->active) == 10; /* YYYY-MM-DD; the API checked */
    ct_param_str(&p, f->timezone);
    ct_param_str(&p, f->active != NULL && !date ? f->active : NULL);
    ct_param_str(&p, date ? f->active : NULL);
    ct_param_str(&p, f->active_from);
    ct_param_str(&p, f->active_to);
    PGresult *res = ct_tx_query(
        tx,
        "SELECT " CT_SQL_ISO_US("CASE WHEN d0 IS NOT NULL THEN d0::timestamp AT TIME ZONE $1"
                                " WHEN length($4::text) = 10 THEN $4::date::timestamp AT TIME"
                                " ZONE $1 ELSE $4::timestamptz END") ", "
        CT_SQL_ISO_US("CASE WHEN d1 IS NOT NULL THEN (d1 + 1)::timestamp AT TIME ZONE $1"
                      " WHEN length($5::text) = 10 THEN $5::date::timestamp AT TIME ZONE $1"
                      " ELSE $5::timestamptz END") " FROM ("
        " SELECT coalesce($3::date, CASE $2::text WHEN 'yesterday' THEN t - 1 WHEN '7d' THEN"
        "  t - 6 WHEN '30d' THEN t - 29 WHEN 'today' THEN t END) AS d0,"
        "  coalesce($3::date, CASE $2::text WHEN 'yesterday' THEN t - 1 WHEN '7d' THEN t"
        "  WHEN '30d' THEN t WHEN 'today' THEN t END) AS d1"
        " FROM (SELECT (now() AT TIME ZONE $1)::date AS t) n) d",
        &p, err);
    if (res == NULL)
        return err->rc;
    snprintf(from, CT_CURSOR_MAX, "%s", PQgetvalue(res, 0, 0));
    snprintf(to, CT_CURSOR_MAX, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return CT_OK;
}

static ct_rc count_statuses(struct ct_tx *tx, const struct ct_ticket_filter *f, cJSON **out,
                            struct ct_err *err)
{
    static const char *const statuses[] = {"new", "open", "pending", "resolved", "closed"};
    struct ct_params p = {0};
    PGresult *res;

    filter_params(&p, f);
    res = ct_tx_query(tx, SEARCH_WORDS "SELECT t.status, count(*)" TICKET_FROM " WHERE"
                          TICKET_FILTERS COUNT_SEARCH " GROUP BY t.status", &p, err);
    if (res == NULL)
        return err->rc;
    *out = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        long long n = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            if (strcmp(PQgetvalue(res, r, 0), statuses[i]) == 0)
                n = atoll(PQgetvalue(res, r, 1));
        }
        cJSON_AddNumberToObject(*out, statuses[i], (double)n);
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_tickets_list(struct ct_tx *tx, const struct ct_ticket_filter *filter,
                            cJSON **out, cJSON **counts, char next_cursor[CT_CURSOR_MAX],
                            struct ct_err *err)
{
    struct ct_params p = {0};
    struct ct_ticket_filter days = *filter;
    const struct ct_ticket_filter *f = filter;
    char from[CT_CURSOR_MAX], to[CT_CURSOR_MAX];
    PGresult *res;
    ct_rc rc;

    *out = NULL;
    next_cursor[0] = '\0';
    if (filter->active != NULL || filter->active_from != NULL || filter->active_to != NULL) {
        if (activity_range(tx, filter, from, to, err) != CT_OK)
            return err->rc;
        days.active_from = from[0] != '\0' ? from : NULL;
        days.active_to = to[0] != '\0' ? to : NULL;
        f = &days;
    }
    filter_params(&p, f);
    ct_param_str(&p, f->status);
    ct_param_ts(&p, f->cursor.set, f->cursor.updated_us);
    ct_param_ll(&p, f->cursor.id);
    ct_param_ll(&p, f->limit + 1);
    res = ct_tx_query(tx,
                     SEARCH_WORDS "SELECT " TICKET_JSON "::text, " US("t.updated_at") ", t.id"
                     TICKET_FROM " WHERE" TICKET_FILTERS PAGE_SEARCH
                     " AND ($10::text IS NULL OR t.status = $10)"
                     " AND ($11::timestamptz IS NULL"
                     "      OR (t.updated_at, t.id) < ($11::timestamptz, $12::bigint))"
                     " ORDER BY t.updated_at DESC, t.id DESC LIMIT $13::int",
                     &p, err);
    if (res == NULL)
        return err->rc;
    *out = cJSON_CreateArray();
    rc = rows_to_array(res, 0, f->limit, *out, err);
    if (rc == CT_OK && PQntuples(res) > f->limit) {
        int last = f->limit - 1;
        struct ct_ticket_cursor c = {true, atoll(PQgetvalue(res, last, 1)),
                                     atoll(PQgetvalue(res, last, 2))};
        ct_cursor_ticket_encode(&c, next_cursor);
    }
    PQclear(res);
    /* counts with the first page only: they cost most of a page (86 ms of 90 at 100,000
     * tickets) and do not change as the reader pages on */
    if (rc == CT_OK && counts != NULL && !f->cursor.set)
        rc = count_statuses(tx, f, counts, err);
    if (rc != CT_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

#define TICKET_BY_ID_SQL "SELECT " TICKET_JSON "::text" TICKET_FROM " WHERE t.id = $1"

void ct_store_ticket_by_id_step(struct ct_tx_step *step, long long id)
{
    step->sql = TICKET_BY_ID_SQL;
    ct_param_ll(&step->p, id);
}

ct_rc ct_store_ticket_by_id_read(const PGresult *res, long long id, cJSON **out,
                                 struct ct_err *err)
{
    *out = NULL;
    if (PQntuples(res) != 1)
        return ct_err_set(err, CT_E_NOT_FOUND, "ticket_not_found", "ticket %lld not found", id);
    *out = cJSON_Parse(PQgetvalue(res, 0, 0));
    if (*out == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode a stored row");
    return CT_OK;
}

ct_rc ct_store_ticket_get(struct ct_tx *tx, long long id, cJSON **out, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    *out = NULL;
    PGresult *res = ct_tx_query(tx, TICKET_BY_ID_SQL, &p, err);
    if (res == NULL)
        return err->rc;
    ct_rc rc = ct_store_ticket_by_id_read(res, id, out, err);
    PQclear(res);
    return rc;
}
