/* store_ingest.c: queries for webhook ingestion: raw receipts, contacts, messages, statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store_internal.h"

ct_rc ct_store_receipt_insert(struct ct_tx *tx, const char *body, size_t len, bool verified,
                              long long *id, bool *dup, struct ct_err *err)
{
    unsigned char sum[32];
    unsigned int sumlen = 0;
    char lens[32];
    EVP_Digest(body, len, sum, &sumlen, EVP_sha256(), NULL);
    snprintf(lens, sizeof(lens), "%zu", len);
    const char *pv[] = {body, (const char *)sum, lens, verified ? "t" : "f"};
    const int pl[] = {(int)len, 32, 0, 0};
    const int pf[] = {1, 1, 0, 0};
    PGresult *res = ct_tx_exec_bin(tx,
                                   "INSERT INTO webhook_receipts (body, body_sha256, body_length,"
                                   " signature_verified) VALUES ($1, $2, $3, $4)"
                                   " ON CONFLICT (body_sha256) DO NOTHING RETURNING id",
                                   4, pv, pl, pf, err);
    if (res == NULL)
        return err->rc;
    *dup = PQntuples(res) == 0;
    if (*dup) {
        /* a new statement sees the earlier receipt even when it committed while we waited */
        PQclear(res);
        const int hl[] = {32};
        const int hf[] = {1};
        const char *hv[] = {(const char *)sum};
        res = ct_tx_exec_bin(tx, "SELECT id FROM webhook_receipts WHERE body_sha256 = $1", 1, hv,
                             hl, hf, err);
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

ct_rc ct_store_receipt_counts(struct ct_tx *tx, long long id, int messages, int statuses,
                              struct ct_err *err)
{
    char ids[32], ms[16], ss[16];
    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(ms, sizeof(ms), "%d", messages);
    snprintf(ss, sizeof(ss), "%d", statuses);
    const char *pv[] = {ids, ms, ss};
    return ct_tx_exec0(tx, "UPDATE webhook_receipts SET messages = $2, statuses = $3 WHERE id = $1", 3,
                 pv, err);
}

ct_rc ct_store_contact_lock(struct ct_tx *tx, const char *phone_number_id, const char *wa_id,
                            long long *id, struct ct_err *err)
{
    const char *pv[] = {phone_number_id, wa_id};
    ct_rc rc = ct_tx_exec0(tx, "INSERT INTO contacts (phone_number_id, wa_id) VALUES ($1, $2)"
                         " ON CONFLICT (phone_number_id, wa_id) DO NOTHING", 2, pv, err);
    if (rc != CT_OK)
        return rc;
    PGresult *res = ct_tx_exec(tx, "SELECT id FROM contacts WHERE phone_number_id = $1"
                                   " AND wa_id = $2 FOR UPDATE", 2, pv, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "contact vanished while locked");
    }
    *id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_contact_name(struct ct_tx *tx, long long id, const char *name, long long sent_us,
                            struct ct_err *err)
{
    char ids[32], ts[48];
    snprintf(ids, sizeof(ids), "%lld", id);
    ct_store_fmt_ts(sent_us, ts);
    const char *pv[] = {ids, name, ts};
    return ct_tx_exec0(tx, "UPDATE contacts SET name = $2, name_at = $3, updated_at = now()"
                     " WHERE id = $1 AND name IS DISTINCT FROM $2"
                     " AND (name_at IS NULL OR name_at <= $3)", 3, pv, err);
}

ct_rc ct_store_message_exists(struct ct_tx *tx, const char *wamid, bool *exists,
                              struct ct_err *err)
{
    const char *pv[] = {wamid};
    PGresult *res = ct_tx_exec(tx, "SELECT 1 FROM messages WHERE wamid = $1", 1, pv, err);
    if (res == NULL)
        return err->rc;
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_message_insert(struct ct_tx *tx, const struct ct_message_new *m, long long *id,
                              bool *dup, struct ct_err *err)
{
    char ticket[32], contact[32], sent[48], receipt[32], recv[48];
    snprintf(ticket, sizeof(ticket), "%lld", m->ticket_id);
    snprintf(contact, sizeof(contact), "%lld", m->contact_id);
    snprintf(receipt, sizeof(receipt), "%lld", m->receipt_id);
    ct_store_fmt_ts(m->sent_us, sent);
    /* the recording time from the same clock as events, so a timeline tie (ticket.created and
     * its first message share the WhatsApp time) breaks in the order things were recorded */
    ct_store_fmt_ts(ct_store_now_us(), recv);
    const char *pv[] = {m->wamid, m->ticket_id ? ticket : NULL, contact, m->direction, m->type,
                        m->body, m->payload, m->context_wamid, sent,
                        m->receipt_id ? receipt : NULL, recv};
    PGresult *res = ct_tx_exec(tx,
                               "INSERT INTO messages (wamid, ticket_id, contact_id, direction, type,"
                               " body, payload, context_wamid, sent_at, receipt_id, received_at)"
                               " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)"
                               " ON CONFLICT (wamid) DO NOTHING RETURNING id",
                               11, pv, err);
    if (res == NULL)
        return err->rc;
    *dup = PQntuples(res) == 0;
    *id = *dup ? 0 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_outbound_lock(struct ct_tx *tx, const char *wamid, struct ct_outbound_ref *out,
                             bool *found, struct ct_err *err)
{
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
                             const char *errors_json, long long receipt_id, bool *dup,
                             struct ct_err *err)
{
    char mid[32], ts[48], rid[32];
    snprintf(mid, sizeof(mid), "%lld", message_id);
    snprintf(rid, sizeof(rid), "%lld", receipt_id);
    ct_store_fmt_ts(ts_us, ts);
    const char *pv[] = {mid, wamid, status, ts, recipient, errors_json, rid};
    PGresult *res = ct_tx_exec(tx,
                               "INSERT INTO message_statuses (message_id, wamid, status, occurred_at,"
                               " recipient_id, errors, receipt_id)"
                               " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
                               " ON CONFLICT (wamid, status) DO NOTHING RETURNING id",
                               7, pv, err);
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
    char ids[32], ts[48], code[16];
    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(code, sizeof(code), "%d", error_code);
    ct_store_fmt_ts(ts_us, ts);
    const char *pv[] = {ids, status, ts, error_code ? code : NULL, error_title};
    return ct_tx_exec0(tx, "UPDATE messages SET status = $2, status_at = $3,"
                     " error_code = coalesce($4::int, error_code),"
                     " error_title = coalesce($5, error_title) WHERE id = $1", 5, pv, err);
}
