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
