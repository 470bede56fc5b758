/* users.c: staff user lifecycle; every change is recorded in the user's event chain. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "casetrail/store.h"
#include "casetrail/text.h"
#include "casetrail/users.h"

const struct ct_actor CT_ACTOR_CLI = {CT_ACTOR_SYSTEM, "cli", NULL, NULL};

bool ct_users_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CT_USER_NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '@' && c != '-')
            return false;
    }
    return true;
}

struct change {
    const struct ct_actor *actor;
    const char *name;
    enum ct_role role;
    long long limit;          /* < 0: no approval limit */
    char *token;              /* out: the new token, when one is made */
};

/* Appends the user event ev (begun by the caller) to user u's chain. */
static ct_rc record(struct ct_tx *tx, struct ct_event_new *ev, const struct ct_user *u,
                    struct ct_err *err)
{
    ev->chain_id = u->id;
    return ct_store_event_append(tx, ev, NULL, err);
}

/* Locks the named user for a change. */
static ct_rc find(struct ct_tx *tx, const struct change *c, struct ct_user *u,
                  struct ct_err *err)
{
    ct_rc rc = ct_store_user_by_name(tx, c->name, true, u, err);
    if (rc == CT_E_NOT_FOUND)
        return ct_err_set(err, CT_E_NOT_FOUND, "user_not_found", "no user named \"%s\"",
                          c->name);
    return rc; /* otherwise the store's error as it is: retries and 503 depend on it */
}

static ct_rc add_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct change *c = arg;
    struct ct_user u;
    struct ct_event_new ev;
    char hash[CT_TOKEN_HASH_LEN + 1];
    cJSON *data = NULL;
    ct_rc rc;

    memset(&u, 0, sizeof(u));
    snprintf(u.name, sizeof(u.name), "%s", c->name);
    u.role = c->role;
    u.has_limit = c->limit >= 0;
    u.approval_limit_minor = c->limit;
    if (!ct_auth_token_new(c->token))
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not generate a token");
    ct_auth_token_hash(c->token, hash);
    rc = ct_store_user_insert(tx, &u, hash, err);
    if (rc != CT_OK)
        return rc;
    data = cJSON_CreateObject();
    if (data == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    if (u.has_limit)
        cJSON_AddNumberToObject(data, "approval_limit_minor", (double)u.approval_limit_minor);
    else
        cJSON_AddNullToObject(data, "approval_limit_minor");
    ct_event_begin(&ev, CT_CHAIN_USER, u.id, CT_EV_USER_CREATED, c->actor);
    ev.to_value = ct_role_name(u.role);
    ev.data = data;
    ct_event_text(&ev, "subject_name", u.name, CT_SCOPE_STAFF);
    rc = record(tx, &ev, &u, err);
    cJSON_Delete(data);
    return rc;
}

static ct_rc set_role_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct change *c = arg;
    struct ct_user u;
    struct ct_event_new ev;
    ct_rc rc = find(tx, c, &u, err);

    if (rc != CT_OK || u.role == c->role)
        return rc; /* nothing changed: nothing to record */
    ct_event_begin(&ev, CT_CHAIN_USER, u.id, CT_EV_USER_ROLE, c->actor);
    ev.from_value = ct_role_name(u.role);
    ev.to_value = ct_role_name(c->role);
    u.role = c->role;
    rc = ct_store_user_update(tx, &u, NULL, err);
    if (rc != CT_OK)
        return rc;
    return record(tx, &ev, &u, err);
}

static ct_rc deactivate_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct change *c = arg;
    struct ct_user u;
    struct ct_event_new ev;
    ct_rc rc = find(tx, c, &u, err);

    if (rc != CT_OK)
        return rc;
    if (!u.active)
        return ct_err_set(err, CT_E_CONFLICT, "already_inactive",
                          "user \"%s\" is already deactivated", c->name);
    ct_event_begin(&ev, CT_CHAIN_USER, u.id, CT_EV_USER_DEACTIVATED, c->actor);
    ev.from_value = "active";
    ev.to_value = "inactive";
    u.active = false;
    rc = ct_store_user_update(tx, &u, NULL, err);
    if (rc != CT_OK)
        return rc;
    return record(tx, &ev, &u, err);
}

static ct_rc rotate_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct change *c = arg;
    struct ct_user u;
    struct ct_event_new ev;
    char hash[CT_TOKEN_HASH_LEN + 1];
    ct_rc rc = find(tx, c, &u, err);

    if (rc != CT_OK)
        return rc;
    if (!u.active)
        return ct_err_set(err, CT_E_CONFLICT, "inactive",
                          "user \"%s\" is deactivated; its token cannot be rotated", c->name);
    if (!ct_auth_token_new(c->token))
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not generate a token");
    ct_auth_token_hash(c->token, hash);
    ct_event_begin(&ev, CT_CHAIN_USER, u.id, CT_EV_USER_TOKEN, c->actor);
    rc = ct_store_user_update(tx, &u, hash, err);
    if (rc != CT_OK)
        return rc;
    return record(tx, &ev, &u, err);
}

static ct_rc check_name(const char *name, struct ct_err *err);

struct password_change {
    struct change c;
    const char *hash;
};

static ct_rc password_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct password_change *pc = arg;
    struct ct_user u;
    struct ct_event_new ev;
    unsigned char md[32];
    char hex[65];
    cJSON *data;
    ct_rc rc = find(tx, &pc->c, &u, err);

    if (rc != CT_OK)
        return rc;
    if (!u.active)
        return ct_err_set(err, CT_E_CONFLICT, "inactive",
                          "user \"%s\" is deactivated; no password can be set", pc->c.name);
    rc = ct_store_user_set_password(tx, u.id, pc->hash, err);
    if (rc != CT_OK)
        return rc;
    data = cJSON_CreateObject();
    if (data == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    EVP_Digest(pc->hash, strlen(pc->hash), md, NULL, EVP_sha256(), NULL);
    ct_hex_encode(md, sizeof(md), hex);
    cJSON_AddStringToObject(data, "algorithm", "scrypt");
    cJSON_AddStringToObject(data, "password_sha256", hex);
    ct_event_begin(&ev, CT_CHAIN_USER, u.id, CT_EV_USER_PASSWORD, pc->c.actor);
    ev.data = data;
    rc = record(tx, &ev, &u, err);
    cJSON_Delete(data);
    return rc;
}

ct_rc ct_users_set_password(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                            const char *password, size_t len, struct ct_err *err)
{
    struct password_change pc = {{actor, name, CT_ROLE_NONE, -1, NULL}, NULL};
    char hash[CT_PASSWORD_HASH_MAX];
    ct_rc rc = check_name(name, err);

    if (rc != CT_OK)
        return rc;
    if (len < CT_PASSWORD_MIN || len > CT_PASSWORD_MAX || memchr(password, '\0', len) != NULL ||
        !ct_utf8_valid(password, len))
        return ct_err_set(err, CT_E_INVALID, "invalid_password",
                          "a password must be %d to %d characters of UTF-8 text without NUL",
                          CT_PASSWORD_MIN, CT_PASSWORD_MAX);
    /* the slow hash runs before the transaction, so no row lock waits on it */
    if (!ct_auth_password_hash(password, len, hash))
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not hash the password");
    pc.hash = hash;
    rc = ct_store_in_tx(pool, password_tx, &pc, err);
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

static ct_rc check_name(const char *name, struct ct_err *err)
{
    if (!ct_users_name_valid(name))
        return ct_err_set(err, CT_E_INVALID, "invalid_name",
                          "invalid user name: use 1 to 64 letters, digits, '.', '_', '@' or '-',"
                          " starting with a letter or digit");
    return CT_OK;
}

ct_rc ct_users_add(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                   enum ct_role role, long long limit, char token_out[CT_TOKEN_LEN + 1],
                   struct ct_err *err)
{
    struct change c = {actor, name, role, limit, token_out};
    if (check_name(name, err) != CT_OK)
        return err->rc;
    if (role == CT_ROLE_NONE)
        return ct_err_set(err, CT_E_INVALID, "invalid_role",
                          "role must be agent, supervisor, qa or admin");
    return ct_store_in_tx(pool, add_tx, &c, err);
}

ct_rc ct_users_set_role(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                        enum ct_role role, struct ct_err *err)
{
    struct change c = {actor, name, role, -1, NULL};
    if (role == CT_ROLE_NONE)
        return ct_err_set(err, CT_E_INVALID, "invalid_role",
                          "role must be agent, supervisor, qa or admin");
    return ct_store_in_tx(pool, set_role_tx, &c, err);
}

ct_rc ct_users_deactivate(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                          struct ct_err *err)
{
    struct change c = {actor, name, CT_ROLE_NONE, -1, NULL};
    return ct_store_in_tx(pool, deactivate_tx, &c, err);
}

ct_rc ct_users_rotate_token(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                            char token_out[CT_TOKEN_LEN + 1], struct ct_err *err)
{
    struct change c = {actor, name, CT_ROLE_NONE, -1, token_out};
    return ct_store_in_tx(pool, rotate_tx, &c, err);
}

struct auth_arg {
    const char *hash;
    struct ct_user *out;
};

static ct_rc lookup(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct auth_arg *a = arg;
    return ct_store_user_by_token(tx, a->hash, a->out, err);
}

ct_rc ct_users_authenticate(struct ct_pool *pool, const char *token, struct ct_user *out,
                            struct ct_err *err)
{
    char hash[CT_TOKEN_HASH_LEN + 1];
    struct auth_arg a = {hash, out};
    ct_rc rc;

    if (!ct_auth_token_well_formed(token))
        return ct_err_set(err, CT_E_UNAUTHORIZED, "unauthorized", "invalid or missing API token");
    ct_auth_token_hash(token, hash);
    rc = ct_store_with_conn(pool, lookup, &a, err);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (rc == CT_E_NOT_FOUND || (rc == CT_OK && !out->active))
        return ct_err_set(err, CT_E_UNAUTHORIZED, "unauthorized", "invalid or missing API token");
    return rc;
}
