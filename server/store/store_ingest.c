/* store_ingest.c: queries for webhook ingestion: raw receipts, contacts, messages, statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "casetrail/text.h"
#include "store_internal.h"

/* Marks known[i] for each position i (1-based in PostgreSQL's array) the answer lists. */
static void mark_known(const char *arr, bool *known, size_t n)
{
    for (const char *p = arr; p != NULL && *p != '\0'; p++) {
        if (*p >= '1' && *p <= '9') {
            char *end;
            unsigned long long i = strtoull(p, &end, 10);
            if (i >= 1 && i <= n)
                known[i - 1] = true;
            p = end - 1;
        }
    }
}

ct_rc ct_store_receipt_insert(struct ct_tx *tx, const struct ct_receipt_new *r, long long *id,
                              bool *dup, char sha256_hex[65], bool *known, struct ct_err *err)
{
    unsigned char sum[32];
    unsigned int sumlen = 0;
    struct ct_params p = {0}, h = {0};
    EVP_Digest(r->body, r->len, sum, &sumlen, EVP_sha256(), NULL);
    ct_hex_encode(sum, sizeof(sum), sha256_hex);
    ct_param_bin(&p, r->body, r->len);
    ct_param_bin(&p, sum, sizeof(sum));
    ct_param_ll(&p, (long long)r->len);
    ct_param_bool(&p, r->signature != NULL);
    ct_param_str(&p, r->signature);
    ct_param_ll(&p, r->messages);
    ct_param_ll(&p, r->statuses);
    ct_param_ll(&p, r->rejected);
    ct_param_str(&p, r->wamids_json);
    /* the counts as they will be when every entry is new (ct_store_receipt_counts corrects
     * them otherwise), and which of the body's wamids are stored already: the first duplicate
     * check of each message, in the same round trip. A scalar subquery with LIMIT, not EXISTS:
     * the planner turned EXISTS into a hashed semi-join that read all of messages each time */
    PGresult *res = ct_tx_query(tx,
                                "WITH r AS (INSERT INTO webhook_receipts (body, body_sha256,"
                                " body_length, signature_verified, signature, messages, statuses,"
                                " rejected) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                                " ON CONFLICT (body_sha256) DO NOTHING RETURNING id)"
                                " SELECT (SELECT id FROM r), ARRAY(SELECT w.i FROM"
                                " jsonb_array_elements_text(coalesce($9::jsonb, '[]'))"
                                " WITH ORDINALITY w (wamid, i) WHERE (SELECT true FROM messages m"
                                " WHERE m.wamid = w.wamid LIMIT 1))",
                                &p, err);
    if (res == NULL)
        return err->rc;
    if (known != NULL)
        mark_known(PQgetvalue(res, 0, 1), known, r->nwamids);
    *dup = PQgetisnull(res, 0, 0);
    if (*dup) {
        /* a new statement sees the earlier receipt even when it committed while we waited */
        PQclear(res);
        ct_param_bin(&h, sum, sizeof(sum));
        res = ct_tx_query(tx, "SELECT id FROM webhook_receipts WHERE body_sha256 = $1", &h, err);
        if (res == NULL)
            return err->rc;
        if (PQntuples(res) != 1) {
            PQclear(res);
            return ct_err_set(err, CT_E_INTERNAL, "internal", "receipt vanished");
        }
    }
    *id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return CT_OK;
}

/* The group's receipts in arrival order (i): each distinct body inserted once, in that order so
 * ids grow as one by one; per receipt its id when this statement inserted it, whether it is the
 * first of its bytes in the group, and which of its wamids are stored already. */
#define RECEIPTS_SQL                                                                          \
    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r (i int, body text, sha text," \
    " len bigint, verified boolean, signature text, messages int, statuses int, rejected int," \
    " wamids jsonb)),"                                                                         \
    " ins AS (INSERT INTO webhook_receipts (body, body_sha256, body_length,"                  \
    " signature_verified, signature, messages, statuses, rejected)"                           \
    " SELECT decode(body, 'base64'), decode(sha, 'hex'), len, verified, signature, messages," \
    " statuses, rejected FROM (SELECT DISTINCT ON (sha) * FROM r ORDER BY sha, i) d ORDER BY i" \
    " ON CONFLICT (body_sha256) DO NOTHING RETURNING id, encode(body_sha256, 'hex') AS sha)"   \
    " SELECT r.i, ins.id, r.i = (SELECT min(x.i) FROM r x WHERE x.sha = r.sha),"              \
    " ARRAY(SELECT w.k FROM jsonb_array_elements_text(coalesce(r.wamids, '[]'))"              \
    " WITH ORDINALITY w (wamid, k) WHERE (SELECT true FROM messages m"                        \
    " WHERE m.wamid = w.wamid LIMIT 1)) FROM r LEFT JOIN ins ON ins.sha = r.sha ORDER BY r.i"

static cJSON *receipt_json(const struct ct_receipt_new *r, size_t i, const char *sha)
{
    int b64len = 4 * (int)((r->len + 2) / 3);
    char *b64 = malloc((size_t)b64len + 1);
    cJSON *o = cJSON_CreateObject();
    bool ok = b64 != NULL && o != NULL;
    if (ok)
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)r->body, (int)r->len);
    ok = ok && ct_json_add_int(o, "i", (long long)i) &&
         cJSON_AddStringToObject(o, "body", b64) != NULL &&
         cJSON_AddStringToObject(o, "sha", sha) != NULL &&
         ct_json_add_int(o, "len", (long long)r->len) &&
         cJSON_AddBoolToObject(o, "verified", r->signature != NULL) != NULL &&
         ct_json_add_str(o, "signature", r->signature) &&
         ct_json_add_int(o, "messages", r->messages) &&
         ct_json_add_int(o, "statuses", r->statuses) &&
         ct_json_add_int(o, "rejected", r->rejected) &&
         ct_json_add_raw(o, "wamids", r->wamids_json);
    free(b64);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Ids of receipts stored before this group (a redelivery): one lookup for all of them. */
static ct_rc earlier_receipts(struct ct_tx *tx, struct ct_receipt_out *out, size_t n,
                              struct ct_err *err)
{
    cJSON *shas = cJSON_CreateArray();
    PGresult *res = NULL;
    ct_rc rc = CT_OK;

    for (size_t i = 0; shas != NULL && i < n; i++)
        if (out[i].id == 0 && !cJSON_AddItemToArray(shas, cJSON_CreateString(out[i].sha256)))
            goto oom;
    /* a new statement: it sees a receipt committed while the insert waited on it */
    res = ct_tx_query_json(tx, "SELECT encode(body_sha256, 'hex'), id FROM webhook_receipts"
                               " WHERE body_sha256 IN (SELECT decode(x, 'hex') FROM"
                               " jsonb_array_elements_text($1::jsonb) x)", shas, NULL, err);
    if (res == NULL) {
        rc = err->rc;
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++)
        for (size_t i = 0; i < n; i++)
            if (out[i].id == 0 && strcmp(out[i].sha256, PQgetvalue(res, r, 0)) == 0)
                out[i].id = atoll(PQgetvalue(res, r, 1));
    for (size_t i = 0; i < n; i++)
        if (out[i].id == 0)
            rc = ct_err_set(err, CT_E_INTERNAL, "internal", "receipt vanished");
    goto out;
oom:
    rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
out:
    PQclear(res);
    cJSON_Delete(shas);
    return rc;
}

bool ct_receipts_step(struct ct_tx_step *st, const struct ct_receipt_new *rs, size_t n,
                      struct ct_receipt_out *out)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < n; i++) {
        ct_sha256_hex(rs[i].body, rs[i].len, out[i].sha256);
        out[i].id = 0;
        out[i].dup = false;
        if (!ct_json_append(arr, receipt_json(&rs[i], i, out[i].sha256))) {
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    return ct_tx_step_json(st, RECEIPTS_SQL, arr);
}

ct_rc ct_receipts_read(struct ct_tx *tx, const PGresult *res, const struct ct_receipt_new *rs,
                       size_t n, struct ct_receipt_out *out, struct ct_err *err)
{
    bool earlier = false;

    if ((size_t)PQntuples(res) != n)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "receipts answer has the wrong length");
    for (size_t i = 0; i < n; i++) {
        bool first = strcmp(PQgetvalue(res, (int)i, 2), "t") == 0;
        if (out[i].known != NULL)
            mark_known(PQgetvalue(res, (int)i, 3), out[i].known, rs[i].nwamids);
        /* only the first of a body's copies in the group is new, and only if it was inserted */
        out[i].dup = !first || PQgetisnull(res, (int)i, 1);
        out[i].id = first && !PQgetisnull(res, (int)i, 1) ? atoll(PQgetvalue(res, (int)i, 1)) : 0;
    }
    /* later copies in the group share their first's id, wherever it came from */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i && out[i].id == 0; k++)
            if (out[k].id != 0 && strcmp(out[k].sha256, out[i].sha256) == 0)
                out[i].id = out[k].id;
    for (size_t i = 0; i < n; i++)
        earlier = earlier || out[i].id == 0;
    return earlier ? earlier_receipts(tx, out, n, err) : CT_OK;
}

ct_rc ct_store_receipt_counts(struct ct_tx *tx, long long id, int messages, int statuses,
                              int rejected, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_ll(&p, messages);
    ct_param_ll(&p, statuses);
    ct_param_ll(&p, rejected);
    return ct_tx_command(tx, "UPDATE webhook_receipts SET messages = $2, statuses = $3,"
                             " rejected = $4 WHERE id = $1", &p, err);
}

void ct_store_contact_from_row(const PGresult *res, int row, int off,
                               struct ct_contact_row *out)
{
    memset(out, 0, sizeof(*out));
    out->id = atoll(PQgetvalue(res, row, off));
    ct_store_copy(out->wa_id, sizeof(out->wa_id), res, row, off + 1);
    ct_store_copy(out->user_id, sizeof(out->user_id), res, row, off + 2);
    out->merged_into = atoll(PQgetvalue(res, row, off + 3));
    if (PQgetvalue(res, row, off + 4)[0] == 't')
        out->name_state = CT_NAME_NULL;
    else if (!PQgetisnull(res, row, off + 5)) {
        out->name_state = CT_NAME_SET;
        ct_store_copy(out->name, sizeof(out->name), res, row, off + 5);
    }
}

static void row_to_contact(const PGresult *res, struct ct_contact_row *out)
{
    ct_store_contact_from_row(res, 0, 0, out);
}

ct_rc ct_store_contact_find(struct ct_tx *tx, const char *phone_number_id, bool by_user,
                            const char *value, struct ct_contact_row *out, bool *found,
                            struct ct_err *err)
{
    struct ct_params p = {0};
    if (ct_preload_contact(tx, phone_number_id, by_user, value, out, found))
        return CT_OK; /* locked with the rest of its group */
    ct_param_str(&p, phone_number_id);
    ct_param_str(&p, value);
    PGresult *res = ct_tx_query(tx, by_user
                                        ? "SELECT " CT_CONTACT_COLS " FROM contacts WHERE"
                                          " phone_number_id = $1 AND user_id = $2 FOR UPDATE"
                                        : "SELECT " CT_CONTACT_COLS " FROM contacts WHERE"
                                          " phone_number_id = $1 AND wa_id = $2 FOR UPDATE",
                                &p, err);
    if (res == NULL)
        return err->rc;
    *found = PQntuples(res) == 1;
    if (*found)
        row_to_contact(res, out);
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_contact_get(struct ct_tx *tx, long long id, struct ct_contact_row *out,
                           struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    PGresult *res = ct_tx_query(tx, "SELECT " CT_CONTACT_COLS " FROM contacts WHERE id = $1"
                                    " FOR UPDATE", &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, "contact_not_found", "contact %lld not found", id);
    }
    row_to_contact(res, out);
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_contact_insert(struct ct_tx *tx, const char *phone_number_id, const char *wa_id,
                              const char *user_id, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, phone_number_id);
    ct_param_str(&p, wa_id);
    ct_param_str(&p, user_id);
    ct_preload_forget_absent(tx);
    /* no conflict target: either unique key (number or BSUID) may already be taken */
    return ct_tx_command(tx, "INSERT INTO contacts (phone_number_id, wa_id, user_id)"
                             " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", &p, err);
}

ct_rc ct_store_contact_alias(struct ct_tx *tx, const char *phone_number_id, bool by_user,
                             const char *value, long long into, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, phone_number_id);
    ct_param_str(&p, value);
    ct_param_ll(&p, into);
    ct_preload_forget_absent(tx);
    return ct_tx_command(tx, by_user ? "INSERT INTO contacts (phone_number_id, user_id,"
                                       " merged_into) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
                                     : "INSERT INTO contacts (phone_number_id, wa_id,"
                                       " merged_into) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                         &p, err);
}

ct_rc ct_store_contact_set_ids(struct ct_tx *tx, long long id, const char *wa_id,
                               const char *user_id, const char *parent_user_id,
                               struct ct_err *err)
{
    if (ct_defer_flush(tx, err) != CT_OK) /* it reads what a batch holds back */
        return err->rc;
    struct ct_params p = {0};
    ct_preload_forget_contact(tx, id);
    ct_param_ll(&p, id);
    ct_param_str(&p, wa_id);
    ct_param_str(&p, user_id);
    ct_param_str(&p, parent_user_id);
    return ct_tx_command(tx, "UPDATE contacts SET wa_id = coalesce($2, wa_id),"
                             " user_id = coalesce($3, user_id),"
                             " parent_user_id = coalesce($4, parent_user_id), updated_at = now()"
                             " WHERE id = $1", &p, err);
}

ct_rc ct_store_contact_merge(struct ct_tx *tx, long long from, long long into,
                             struct ct_err *err)
{
    if (ct_defer_flush(tx, err) != CT_OK) /* it reads what a batch holds back */
        return err->rc;
    struct ct_params p = {0};
    ct_preload_forget_contact(tx, from);
    ct_preload_forget_contact(tx, into);
    ct_preload_forget_live(tx, from);
    ct_preload_forget_live(tx, into);
    ct_param_ll(&p, from);
    ct_param_ll(&p, into);
    ct_rc rc = ct_tx_command(tx, "UPDATE contacts SET merged_into = $2, updated_at = now()"
                                 " WHERE id = $1", &p, err);
    if (rc != CT_OK)
        return rc;
    /* one live ticket per contact: the other's live ticket moves only when into has none */
    return ct_tx_command(tx, "UPDATE tickets SET contact_id = $2 WHERE contact_id = $1 AND"
                             " (status = 'closed' OR NOT EXISTS (SELECT 1 FROM tickets t"
                             "  WHERE t.contact_id = $2 AND t.status <> 'closed'))", &p, err);
}

ct_rc ct_store_contact_username(struct ct_tx *tx, long long id, const char *username,
                                long long sent_us, struct ct_err *err)
{
    struct ct_params p = {0}; /* the preload keeps no username: nothing to forget */
    ct_param_ll(&p, id);
    ct_param_str(&p, username);
    ct_param_ts(&p, true, sent_us);
    return ct_tx_command(tx, "UPDATE contacts SET username = $2, username_at = $3,"
                             " updated_at = now() WHERE id = $1"
                             " AND username IS DISTINCT FROM $2"
                             " AND (username_at IS NULL OR username_at <= $3)", &p, err);
}

ct_rc ct_store_ticket_latest(struct ct_tx *tx, long long contact_id, long long *id,
                             struct ct_err *err)
{
    if (ct_defer_flush(tx, err) != CT_OK) /* it reads what a batch holds back */
        return err->rc;
    struct ct_params p = {0};
    ct_param_ll(&p, contact_id);
    PGresult *res = ct_tx_query(tx, "SELECT id FROM tickets WHERE contact_id = $1"
                                    " ORDER BY (status <> 'closed') DESC, id DESC LIMIT 1",
                                &p, err);
    if (res == NULL)
        return err->rc;
    *id = PQntuples(res) == 1 ? atoll(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_ticket_first_response(struct ct_tx *tx, long long id, long long at_us,
                                     struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_ts(&p, true, at_us);
    return ct_tx_command(tx, "UPDATE tickets SET first_response_at = $2 WHERE id = $1 AND"
                             " (first_response_at IS NULL OR first_response_at > $2)", &p, err);
}

ct_rc ct_store_contact_name(struct ct_tx *tx, long long id, const char *name, long long sent_us,
                            struct ct_err *err)
{
    struct ct_params p = {0};
    ct_preload_forget_contact(tx, id);
    ct_param_ll(&p, id);
    ct_param_str(&p, name);
    ct_param_ts(&p, true, sent_us);
    return ct_tx_command(tx, "UPDATE contacts SET name = $2, name_at = $3, updated_at = now()"
                             " WHERE id = $1 AND name IS DISTINCT FROM $2"
                             " AND (name_at IS NULL OR name_at <= $3)", &p, err);
}

ct_rc ct_store_message_exists(struct ct_tx *tx, const char *wamid, bool *exists,
                              struct ct_err *err)
{
    const char *pv[] = {wamid};
    if (tx->defer != NULL && ct_defer_has_wamid(tx->defer, wamid)) {
        *exists = true; /* held back by this batched transaction */
        return CT_OK;
    }
    PGresult *res = ct_tx_exec(tx, "SELECT 1 FROM messages WHERE wamid = $1", 1, pv, err);
    if (res == NULL)
        return err->rc;
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_message_insert(struct ct_tx *tx, const struct ct_message_new *m, long long *id,
                              bool *dup, char payload_sha256[65], struct ct_err *err)
{
    struct ct_params p = {0};
    ct_preload_saw_wamid(tx, m->wamid);
    if (tx->defer != NULL && !m->immediate) {
        *dup = false; /* a duplicate fails the flush instead (see ct_store_in_tx_batched) */
        payload_sha256[0] = '\0';
        return ct_defer_message(tx->defer, m, id, err);
    }
    ct_param_str(&p, m->wamid);
    ct_param_id(&p, m->ticket_id);
    ct_param_ll(&p, m->contact_id);
    ct_param_str(&p, m->direction);
    ct_param_str(&p, m->type);
    ct_param_str(&p, m->body);
    ct_param_str(&p, m->payload);
    ct_param_str(&p, m->context_wamid);
    ct_param_ts(&p, true, m->sent_us);
    ct_param_id(&p, m->receipt_id);
    /* the recording time from the same clock as events, so a timeline tie (ticket.created and
     * its first message share the WhatsApp time) breaks in the order things were recorded */
    ct_param_ts(&p, true, ct_store_now_us());
    ct_param_str(&p, m->target_wamid);
    PGresult *res =
        ct_tx_query(tx,
                    "INSERT INTO messages (wamid, ticket_id, contact_id, direction, type,"
                    " body, payload, context_wamid, sent_at, receipt_id, received_at,"
                    " target_wamid)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12)"
                    " ON CONFLICT (wamid) DO NOTHING RETURNING id,"
                    " encode(sha256(convert_to(payload::text, 'UTF8')), 'hex')",
                    &p, err);
    if (res == NULL)
        return err->rc;
    *dup = PQntuples(res) == 0;
    *id = *dup ? 0 : atoll(PQgetvalue(res, 0, 0));
    payload_sha256[0] = '\0';
    if (!*dup)
        ct_store_copy(payload_sha256, 65, res, 0, 1);
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_outbound_lock(struct ct_tx *tx, const char *wamid, struct ct_outbound_ref *out,
                             bool *found, struct ct_err *err)
{
    if (ct_defer_flush(tx, err) != CT_OK) /* it reads what a batch holds back */
        return err->rc;
    const char *pv[] = {wamid};
    PGresult *res = ct_tx_exec(tx, "SELECT id, coalesce(ticket_id, 0), coalesce(status, '')"
                                   " FROM messages WHERE wamid = $1 AND direction = 'out'"
                                   " FOR UPDATE", 1, pv, err);
    if (res == NULL)
        return err->rc;
    *found = PQntuples(res) == 1;
    memset(out, 0, sizeof(*out));
    if (*found) {
        out->id = atoll(PQgetvalue(res, 0, 0));
        out->ticket_id = atoll(PQgetvalue(res, 0, 1));
        ct_store_copy(out->status, sizeof(out->status), res, 0, 2);
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_status_insert(struct ct_tx *tx, long long message_id, const char *wamid,
                             const char *status, long long ts_us, const char *recipient,
                             const char *recipient_user_id, const char *username,
                             const char *errors_json, long long receipt_id, bool *dup,
                             struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, message_id);
    ct_param_str(&p, wamid);
    ct_param_str(&p, status);
    ct_param_ts(&p, true, ts_us);
    ct_param_str(&p, recipient);
    ct_param_str(&p, errors_json);
    ct_param_ll(&p, receipt_id);
    ct_param_str(&p, recipient_user_id);
    ct_param_str(&p, username);
    PGresult *res =
        ct_tx_query(tx,
                    "INSERT INTO message_statuses (message_id, wamid, status, occurred_at,"
                    " recipient_id, errors, receipt_id, recipient_user_id, username)"
                    " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)"
                    " ON CONFLICT (wamid, status) DO NOTHING RETURNING id",
                    &p, err);
    if (res == NULL)
        return err->rc;
    *dup = PQntuples(res) == 0;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_message_set_status(struct ct_tx *tx, long long id, const char *status,
                                  long long ts_us, int error_code, const char *error_title,
                                  struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_str(&p, status);
    ct_param_ts(&p, true, ts_us);
    ct_param_id(&p, error_code);
    ct_param_str(&p, error_title);
    return ct_tx_command(tx, "UPDATE messages SET status = $2, status_at = $3,"
                             " error_code = coalesce($4::int, error_code),"
                             " error_title = coalesce($5, error_title) WHERE id = $1", &p, err);
}

ct_rc ct_store_reject_insert(struct ct_tx *tx, long long receipt_id, const char *kind,
                             const char *position, const char *reason, const char *item,
                             struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, receipt_id);
    ct_param_str(&p, kind);
    ct_param_str(&p, position);
    ct_param_str(&p, reason);
    ct_param_str(&p, item);
    return ct_tx_command(tx, "INSERT INTO webhook_rejects (receipt_id, kind, position, reason,"
                             " item) VALUES ($1, $2, $3, $4, $5::jsonb)"
                             " ON CONFLICT (receipt_id, position) DO NOTHING", &p, err);
}

ct_rc ct_store_rejects_list(struct ct_tx *tx, int limit, const struct ct_id_cursor *cursor,
                            cJSON **out, char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    struct ct_params p = {0};
    PGresult *res;
    int n;

    *out = NULL;
    next_cursor[0] = '\0';
    ct_param_id(&p, cursor->set ? cursor->id : 0);
    ct_param_ll(&p, limit + 1);
    res = ct_tx_query(tx,
                      "SELECT jsonb_build_object('id', id, 'receipt_id', receipt_id, 'kind', kind,"
                      " 'position', position, 'reason', reason, 'item', item, 'created_at', "
                      CT_SQL_ISO_US("created_at") ")::text, id FROM webhook_rejects"
                      " WHERE $1::bigint IS NULL OR id < $1::bigint ORDER BY id DESC LIMIT $2",
                      &p, err);
    if (res == NULL)
        return err->rc;
    *out = cJSON_CreateArray();
    n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        cJSON_AddItemToArray(*out, cJSON_Parse(PQgetvalue(res, i, 0)));
    if (n > limit) {
        struct ct_id_cursor c = {true, atoll(PQgetvalue(res, limit - 1, 1))};
        ct_cursor_id_encode('r', &c, next_cursor);
    }
    PQclear(res);
    return CT_OK;
}
