/* store_users.c: queries on staff users. Token lookups go by SHA-256 hash only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define USER_COLS "id, name, role, approval_limit_minor, active, " CT_SQL_ISO("created_at")

static void row_to_user(const PGresult *res, int row, struct ct_user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = atoll(PQgetvalue(res, row, 0));
    ct_store_copy(u->name, sizeof(u->name), res, row, 1);
    u->role = ct_role_parse(PQgetvalue(res, row, 2));
    u->has_limit = !PQgetisnull(res, row, 3);
    u->approval_limit_minor = u->has_limit ? atoll(PQgetvalue(res, row, 3)) : 0;
    u->active = strcmp(PQgetvalue(res, row, 4), "t") == 0;
    ct_store_copy(u->created_at, sizeof(u->created_at), res, row, 5);
}

static ct_rc one_user(struct ct_tx *tx, const char *sql, const char *param, struct ct_user *out,
                      struct ct_err *err)
{
    const char *pv[] = {param};
    PGresult *res = ct_tx_exec(tx, sql, 1, pv, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, "user_not_found", "no such user");
    }
    row_to_user(res, 0, out);
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_user_by_token(struct ct_tx *tx, const char *token_hash, struct ct_user *out,
                             struct ct_err *err)
{
    return one_user(tx, "SELECT " USER_COLS " FROM users WHERE token_hash = $1", token_hash, out,
                    err);
}

ct_rc ct_store_user_by_name(struct ct_tx *tx, const char *name, bool lock, struct ct_user *out,
                            struct ct_err *err)
{
    return one_user(tx,
                    lock ? "SELECT " USER_COLS " FROM users WHERE name = $1 FOR UPDATE"
                         : "SELECT " USER_COLS " FROM users WHERE name = $1",
                    name, out, err);
}

/* No limit is SQL NULL: docs/DECISIONS.md#approvals-and-limits */
static void limit_param(struct ct_params *p, const struct ct_user *u)
{
    if (u->has_limit)
        ct_param_ll(p, u->approval_limit_minor);
    else
        ct_param_str(p, NULL);
}

ct_rc ct_store_user_insert(struct ct_tx *tx, struct ct_user *u, const char *token_hash,
                           struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, u->name);
    ct_param_str(&p, ct_role_name(u->role));
    limit_param(&p, u);
    ct_param_str(&p, token_hash);
    PGresult *res = ct_tx_query(tx,
                                "INSERT INTO users (name, role, approval_limit_minor, token_hash)"
                                " VALUES ($1, $2, $3, $4) RETURNING id, " CT_SQL_ISO("created_at"),
                                &p, err);
    if (res == NULL) {
        if (err->rc == CT_E_CONFLICT)
            ct_err_set(err, CT_E_CONFLICT, "user_exists", "a user named \"%s\" already exists",
                       u->name);
        return err->rc;
    }
    u->id = atoll(PQgetvalue(res, 0, 0));
    ct_store_copy(u->created_at, sizeof(u->created_at), res, 0, 1);
    u->active = true;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_user_update(struct ct_tx *tx, const struct ct_user *u, const char *token_hash,
                           struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, u->id);
    ct_param_str(&p, ct_role_name(u->role));
    ct_param_bool(&p, u->active);
    ct_param_str(&p, token_hash);
    limit_param(&p, u);
    return ct_tx_command(tx,
                         "UPDATE users SET role = $2, active = $3,"
                         " token_hash = coalesce($4, token_hash),"
                         " approval_limit_minor = $5, updated_at = now() WHERE id = $1",
                         &p, err);
}

ct_rc ct_store_user_list(struct ct_tx *tx, struct ct_user **out, size_t *n, struct ct_err *err)
{
    PGresult *res = ct_tx_exec(tx, "SELECT " USER_COLS " FROM users ORDER BY name", 0, NULL, err);
    *out = NULL;
    *n = 0;
    if (res == NULL)
        return err->rc;
    int rows = PQntuples(res);
    *out = calloc(rows > 0 ? (size_t)rows : 1, sizeof(**out));
    if (*out == NULL) {
        PQclear(res);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    for (int i = 0; i < rows; i++)
        row_to_user(res, i, &(*out)[i]);
    *n = (size_t)rows;
    PQclear(res);
    return CT_OK;
}

/* ---- passwords, sign-in limits and sessions ---- */

ct_rc ct_store_user_password(struct ct_tx *tx, long long id, char *hash, size_t len,
                             struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    PGresult *res = ct_tx_query(tx, "SELECT coalesce(password_hash, '') FROM users WHERE id = $1",
                                &p, err);
    if (res == NULL)
        return err->rc;
    hash[0] = '\0';
    if (PQntuples(res) == 1)
        ct_store_copy(hash, len, res, 0, 0);
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_user_set_password(struct ct_tx *tx, long long id, const char *hash,
                                 struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, id);
    ct_param_str(&p, hash);
    ct_rc rc = ct_tx_command(tx, "UPDATE users SET password_hash = $2, updated_at = now()"
                                 " WHERE id = $1", &p, err);
    if (rc != CT_OK)
        return rc;
    struct ct_params q = {0};
    ct_param_ll(&q, id);
    return ct_tx_command(tx, "UPDATE sessions SET ended_at = now() WHERE user_id = $1"
                             " AND ended_at IS NULL", &q, err);
}

/* Seconds until the nth newest failure of one key leaves the window; 0 when fewer. */
#define WAIT_SQL(col)                                                                         \
    "SELECT ceil(extract(epoch FROM at + $2 * interval '1 second' - now()))::int"            \
    " FROM sign_in_failures WHERE " col " = $1 AND at > now() - $2 * interval '1 second'"     \
    " ORDER BY at DESC OFFSET $3 - 1 LIMIT 1"

static ct_rc wait_for(struct ct_tx *tx, const char *sql, const char *key, int max, int window_s,
                      int *wait_s, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, key);
    ct_param_ll(&p, window_s);
    ct_param_ll(&p, max);
    PGresult *res = ct_tx_query(tx, sql, &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 1) {
        int w = atoi(PQgetvalue(res, 0, 0));
        if (w < 1)
            w = 1;
        if (w > *wait_s)
            *wait_s = w;
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_sign_in_wait(struct ct_tx *tx, const char *name, const char *address,
                            int max_name, int max_address, int window_s, int *wait_s,
                            struct ct_err *err)
{
    *wait_s = 0;
    ct_rc rc = wait_for(tx, WAIT_SQL("name"), name, max_name, window_s, wait_s, err);
    if (rc == CT_OK)
        rc = wait_for(tx, WAIT_SQL("address"), address, max_address, window_s, wait_s, err);
    return rc;
}

ct_rc ct_store_sign_in_failed(struct ct_tx *tx, const char *name, const char *address,
                              struct ct_err *err)
{
    struct ct_params p = {0}, none = {0};
    ct_param_str(&p, name);
    ct_param_str(&p, address);
    ct_rc rc = ct_tx_command(tx, "INSERT INTO sign_in_failures (name, address) VALUES ($1, $2)",
                             &p, err);
    if (rc == CT_OK)
        rc = ct_tx_command(tx, "DELETE FROM sign_in_failures WHERE at < now() - interval"
                               " '1 day'", &none, err);
    return rc;
}

ct_rc ct_store_sign_in_succeeded(struct ct_tx *tx, const char *name, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, name);
    return ct_tx_command(tx, "DELETE FROM sign_in_failures WHERE name = $1", &p, err);
}

ct_rc ct_store_session_insert(struct ct_tx *tx, const char *token_hash, const struct ct_user *u,
                              const char *address, const char *user_agent, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, token_hash);
    ct_param_ll(&p, u->id);
    ct_param_str(&p, ct_role_name(u->role));
    ct_param_str(&p, address);
    ct_param_str(&p, user_agent);
    return ct_tx_command(tx, "INSERT INTO sessions (token_hash, user_id, role, address,"
                             " user_agent) VALUES ($1, $2, $3, $4, $5)", &p, err);
}

#define SESSION_SQL                                                                           \
    "SELECT " USER_COLS ", s.stale FROM users u JOIN (SELECT user_id, role AS signed_in_as,"   \
    " last_seen_at < now() - interval '1 minute' AS stale FROM sessions"                      \
    " WHERE token_hash = $1 AND ended_at IS NULL"                                             \
    " AND last_seen_at > now() - $2 * interval '1 minute'"                                    \
    " AND created_at > now() - $3 * interval '1 hour') s ON s.user_id = u.id"                 \
    " WHERE u.active AND u.role = s.signed_in_as"

ct_rc ct_store_session_user(struct ct_tx *tx, const char *token_hash, int idle_min, int max_h,
                            struct ct_user *out, struct ct_err *err)
{
    struct ct_params p = {0};
    bool stale;
    ct_param_str(&p, token_hash);
    ct_param_ll(&p, idle_min);
    ct_param_ll(&p, max_h);
    PGresult *res = ct_tx_query(tx, SESSION_SQL, &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, "session_not_found", "no such session");
    }
    row_to_user(res, 0, out);
    stale = PQgetvalue(res, 0, 6)[0] == 't';
    PQclear(res);
    if (!stale)
        return CT_OK;
    struct ct_params q = {0};
    ct_param_str(&q, token_hash);
    return ct_tx_command(tx, "UPDATE sessions SET last_seen_at = now() WHERE token_hash = $1",
                         &q, err);
}

ct_rc ct_store_session_end(struct ct_tx *tx, const char *token_hash, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, token_hash);
    return ct_tx_command(tx, "UPDATE sessions SET ended_at = now() WHERE token_hash = $1"
                             " AND ended_at IS NULL", &p, err);
}
