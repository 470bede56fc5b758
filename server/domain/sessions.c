/* sessions.c: sign-in, session lookup and sign-out for the viewer. The password check runs
 * outside any transaction (scrypt is slow on purpose) and answers the same for every kind of
 * wrong, so neither the answer nor its timing tells whether a name exists. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "casetrail/sessions.h"
#include "casetrail/store.h"
#include "casetrail/users.h"

struct wait_job {
    const struct ct_sign_in *in;
    int wait_s;
};

static ct_rc wait_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct wait_job *j = arg;
    return ct_store_sign_in_wait(tx, j->in->name, j->in->address, CT_SIGN_IN_MAX_NAME,
                                 CT_SIGN_IN_MAX_ADDRESS, CT_SIGN_IN_WINDOW_S, &j->wait_s, err);
}

struct lookup_job {
    const char *name;
    struct ct_user user;
    bool found;
    char hash[CT_PASSWORD_HASH_MAX];
};

static ct_rc lookup_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct lookup_job *j = arg;
    ct_rc rc = ct_store_user_by_name(tx, j->name, false, &j->user, err);
    j->found = rc == CT_OK;
    j->hash[0] = '\0';
    if (rc == CT_E_NOT_FOUND)
        return CT_OK;
    if (rc != CT_OK)
        return rc;
    return ct_store_user_password(tx, j->user.id, j->hash, sizeof(j->hash), err);
}

struct outcome_job {
    const struct ct_sign_in *in;
    const struct ct_user *user; /* NULL: the attempt failed */
    const char *token_hash;
};

static ct_rc outcome_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct outcome_job *j = arg;
    if (j->user == NULL)
        return ct_store_sign_in_failed(tx, j->in->name, j->in->address, err);
    ct_rc rc = ct_store_sign_in_succeeded(tx, j->in->name, err);
    if (rc == CT_OK)
        rc = ct_store_session_insert(tx, j->token_hash, j->user, j->in->address,
                                     j->in->user_agent, err);
    return rc;
}

ct_rc ct_sessions_sign_in(struct ct_pool *pool, const struct ct_sign_in *in,
                          char token[CT_TOKEN_LEN + 1], struct ct_user *user, struct ct_err *err)
{
    struct wait_job w = {in, 0};
    struct lookup_job l;
    struct outcome_job o = {in, NULL, NULL};
    char token_hash[CT_TOKEN_HASH_LEN + 1];
    ct_rc rc;
    bool ok;

    rc = ct_store_with_conn(pool, wait_tx, &w, err);
    if (rc != CT_OK)
        return rc;
    if (w.wait_s > 0) {
        ct_err_set(err, CT_E_TOO_MANY, "too_many_attempts",
                   "too many failed sign-ins: try again in %d seconds", w.wait_s);
        err->retry_after_s = w.wait_s;
        return CT_E_TOO_MANY;
    }
    memset(&l, 0, sizeof(l));
    l.name = in->name;
    if (ct_users_name_valid(in->name)) {
        rc = ct_store_with_conn(pool, lookup_tx, &l, err);
        if (rc != CT_OK)
            return rc;
    }
    /* an unknown name or a user without a password runs the same scrypt against nothing */
    ok = ct_auth_password_check(in->password, in->password_len, l.found ? l.hash : NULL) &&
         l.found && l.user.active;
    OPENSSL_cleanse(l.hash, sizeof(l.hash));
    if (ok) {
        if (!ct_auth_token_new(token))
            return ct_err_set(err, CT_E_INTERNAL, "internal", "could not make a session");
        ct_auth_token_hash(token, token_hash);
        o.user = &l.user;
        o.token_hash = token_hash;
    }
    rc = ct_store_in_tx(pool, outcome_tx, &o, err);
    OPENSSL_cleanse(token_hash, sizeof(token_hash));
    if (rc != CT_OK)
        return rc;
    if (!ok)
        return ct_err_set(err, CT_E_UNAUTHORIZED, "bad_credentials",
                          "wrong name or password");
    *user = l.user;
    return CT_OK;
}

struct resolve_job {
    const char *hash;
    int idle_min, max_h;
    struct ct_user *user;
};

static ct_rc resolve_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct resolve_job *j = arg;
    return ct_store_session_user(tx, j->hash, j->idle_min, j->max_h, j->user, err);
}

ct_rc ct_sessions_resolve(struct ct_pool *pool, const char *token, int idle_min, int max_h,
                          struct ct_user *user, struct ct_err *err)
{
    char hash[CT_TOKEN_HASH_LEN + 1];
    struct resolve_job j = {hash, idle_min, max_h, user};
    ct_rc rc;

    if (!ct_auth_token_well_formed(token))
        return ct_err_set(err, CT_E_UNAUTHORIZED, "unauthorized",
                          "your session has ended: sign in again");
    ct_auth_token_hash(token, hash);
    rc = ct_store_with_conn(pool, resolve_tx, &j, err);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (rc == CT_E_NOT_FOUND)
        return ct_err_set(err, CT_E_UNAUTHORIZED, "unauthorized",
                          "your session has ended: sign in again");
    return rc;
}

static ct_rc end_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    return ct_store_session_end(tx, arg, err);
}

ct_rc ct_sessions_end(struct ct_pool *pool, const char *token, struct ct_err *err)
{
    char hash[CT_TOKEN_HASH_LEN + 1];
    if (!ct_auth_token_well_formed(token))
        return CT_OK;
    ct_auth_token_hash(token, hash);
    return ct_store_in_tx(pool, end_tx, hash, err);
}
