/* store_media.c: queries behind media evidence: what to fetch, claims, outcomes, lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

ct_rc ct_store_media_insert(struct ct_tx *tx, long long message_id, const char *media_id,
                            const char *mime_type, const char *expect_sha256,
                            struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, message_id);
    ct_param_str(&p, media_id);
    ct_param_str(&p, mime_type);
    ct_param_str(&p, expect_sha256);
    return ct_tx_command(tx, "INSERT INTO media (message_id, media_id, mime_type, expect_sha256)"
                             " VALUES ($1, $2, $3, $4) ON CONFLICT (message_id) DO NOTHING",
                         &p, err);
}

ct_rc ct_store_media_claim(struct ct_tx *tx, struct ct_media_job *out, bool *found,
                           struct ct_err *err)
{
    struct ct_params p = {0};
    PGresult *res = ct_tx_query(
        tx,
        "UPDATE media SET attempts = attempts + 1, next_at = now() + interval '1 minute',"
        " updated_at = now() WHERE id = (SELECT id FROM media WHERE status = 'pending' AND"
        " next_at <= now() ORDER BY next_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, message_id, (SELECT ticket_id FROM messages WHERE id = media.message_id),"
        " attempts, media_id, coalesce(mime_type, ''), coalesce(expect_sha256, '')",
        &p, err);
    memset(out, 0, sizeof(*out));
    *found = false;
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 1) {
        *found = true;
        out->id = atoll(PQgetvalue(res, 0, 0));
        out->message_id = atoll(PQgetvalue(res, 0, 1));
        out->ticket_id = atoll(PQgetvalue(res, 0, 2));
        out->attempts = atoi(PQgetvalue(res, 0, 3));
        ct_store_copy(out->media_id, sizeof(out->media_id), res, 0, 4);
        ct_store_copy(out->mime_type, sizeof(out->mime_type), res, 0, 5);
        ct_store_copy(out->expect_sha256, sizeof(out->expect_sha256), res, 0, 6);
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_media_stored(struct ct_tx *tx, long long id, const char *sha256, long long size,
                            const char *mime_type, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_str(&p, sha256);
    ct_param_ll(&p, size);
    ct_param_str(&p, mime_type[0] ? mime_type : NULL);
    return ct_tx_command(tx, "UPDATE media SET status = 'stored', sha256 = $2, size = $3,"
                             " mime_type = coalesce(mime_type, $4), reason = NULL,"
                             " updated_at = now() WHERE id = $1", &p, err);
}

ct_rc ct_store_media_retry(struct ct_tx *tx, long long id, long delay_ms, bool final,
                           const char *reason, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_ll(&p, delay_ms);
    ct_param_str(&p, final ? "failed" : "pending");
    ct_param_str(&p, reason);
    return ct_tx_command(tx, "UPDATE media SET status = $3, reason = $4, updated_at = now(),"
                             " next_at = now() + $2 * interval '1 millisecond' WHERE id = $1",
                         &p, err);
}

ct_rc ct_store_media_get(struct ct_tx *tx, long long message_id, bool *found,
                         char sha256[65], char mime_type[128], struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, message_id);
    PGresult *res = ct_tx_query(tx, "SELECT sha256, coalesce(mime_type,"
                                    " 'application/octet-stream') FROM media"
                                    " WHERE message_id = $1 AND status = 'stored'", &p, err);
    if (res == NULL)
        return err->rc;
    *found = PQntuples(res) == 1;
    if (*found) {
        ct_store_copy(sha256, 65, res, 0, 0);
        ct_store_copy(mime_type, 128, res, 0, 1);
    }
    PQclear(res);
    return CT_OK;
}
