/* users.c: staff user lifecycle; every change is recorded in the user's event chain. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "casetrail/users.h"

const struct ct_actor CT_ACTOR_CLI = {"system", "cli", NULL};

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
    long long limit;
    char *token;              /* out: new token, when one is made */
    enum { ADD, SET_ROLE, DEACTIVATE, ROTATE } op;
};

static void add_actor_text(struct ct_event_new *ev, const struct ct_actor *actor)
{
    if (actor->name != NULL) {
        ev->texts[ev->ntexts].field = "actor_name";
        ev->texts[ev->ntexts].body = actor->name;
        ev->texts[ev->ntexts].salt_scope = "staff";
        ev->ntexts++;
    }
}

static ct_rc apply_change(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct change *c = arg;
    struct ct_user u;
    char hash[CT_TOKEN_HASH_LEN + 1];
    cJSON *data = NULL;
    ct_rc rc;
    struct ct_event_new ev = {
        .chain_kind = "user",
        .actor_type = c->actor->type,
        .actor_id = c->actor->id,
    };

    if (c->op == ADD) {
        memset(&u, 0, sizeof(u));
        snprintf(u.name, sizeof(u.name), "%s", c->name);
        u.role = c->role;
        u.has_limit = c->limit >= 0;
        u.approval_limit_minor = c->limit;
        if (!ct_auth_token_new(c->token))
            return ct_err_set(err, CT_E_INTERNAL, "internal", "could not generate a token");
        ct_auth_token_hash(c->token, hash);
        if ((rc = ct_store_user_insert(tx, &u, hash, err)) != CT_OK)
            return rc;
        data = cJSON_CreateObject();
        if (data == NULL)
            return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        if (u.has_limit)
            cJSON_AddNumberToObject(data, "approval_limit_minor", (double)u.approval_limit_minor);
        else
            cJSON_AddNullToObject(data, "approval_limit_minor");
        ev.action = "user.created";
        ev.to_value = ct_auth_role_name(u.role);
        ev.data = data;
        ev.texts[ev.ntexts++] = (struct ct_event_text){"subject_name", u.name, "staff"};
    } else {
        rc = ct_store_user_by_name(tx, c->name, true, &u, err);
        if (rc == CT_E_NOT_FOUND)
            return ct_err_set(err, CT_E_NOT_FOUND, "user_not_found", "no user named \"%s\"",
                              c->name);
        if (rc != CT_OK)
            return rc; /* keep the store's code: the retry loop and 503 depend on it */
        if (c->op == SET_ROLE) {
            if (u.role == c->role)
                return CT_OK; /* nothing changed: nothing to record */
            ev.action = "user.role_changed";
            ev.from_value = ct_auth_role_name(u.role);
            ev.to_value = ct_auth_role_name(c->role);
            u.role = c->role;
            rc = ct_store_user_update(tx, &u, NULL, err);
        } else if (c->op == DEACTIVATE) {
            if (!u.active)
                return ct_err_set(err, CT_E_CONFLICT, "already_inactive",
                                  "user \"%s\" is already deactivated", c->name);
            ev.action = "user.deactivated";
            ev.from_value = "active";
            ev.to_value = "inactive";
            u.active = false;
            rc = ct_store_user_update(tx, &u, NULL, err);
        } else {
            if (!u.active)
                return ct_err_set(err, CT_E_CONFLICT, "inactive",
                                  "user \"%s\" is deactivated; its token cannot be rotated",
                                  c->name);
            if (!ct_auth_token_new(c->token))
                return ct_err_set(err, CT_E_INTERNAL, "internal", "could not generate a token");
            ct_auth_token_hash(c->token, hash);
            ev.action = "user.token_rotated";
            rc = ct_store_user_update(tx, &u, hash, err);
        }
        if (rc != CT_OK)
            return rc;
    }
    ev.chain_id = u.id;
    add_actor_text(&ev, c->actor);
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
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
    struct change c = {actor, name, role, limit, token_out, ADD};
    if (check_name(name, err) != CT_OK)
        return err->rc;
    if (role == CT_ROLE_NONE)
        return ct_err_set(err, CT_E_INVALID, "invalid_role", "role must be agent, supervisor, qa or admin");
    return ct_store_in_tx(pool, apply_change, &c, err);
}

ct_rc ct_users_set_role(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                        enum ct_role role, struct ct_err *err)
{
    struct change c = {actor, name, role, -1, NULL, SET_ROLE};
    if (role == CT_ROLE_NONE)
        return ct_err_set(err, CT_E_INVALID, "invalid_role", "role must be agent, supervisor, qa or admin");
    return ct_store_in_tx(pool, apply_change, &c, err);
}

ct_rc ct_users_deactivate(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                          struct ct_err *err)
{
    struct change c = {actor, name, CT_ROLE_NONE, -1, NULL, DEACTIVATE};
    return ct_store_in_tx(pool, apply_change, &c, err);
}

ct_rc ct_users_rotate_token(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                            char token_out[CT_TOKEN_LEN + 1], struct ct_err *err)
{
    struct change c = {actor, name, CT_ROLE_NONE, -1, token_out, ROTATE};
    return ct_store_in_tx(pool, apply_change, &c, err);
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
