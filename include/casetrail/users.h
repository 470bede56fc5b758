/* users.h: staff identity changes. Each change and its user event commit in one transaction;
 * the CLI acts as actor "system". */
#ifndef CASETRAIL_USERS_H
#define CASETRAIL_USERS_H

#include "casetrail/auth.h"
#include "casetrail/err.h"
#include "casetrail/model.h"

/* the store's handles, used by pointer only: domain headers do not include store.h */
struct ct_pool;
struct ct_tx;

extern const struct ct_actor CT_ACTOR_CLI;

/* True when name is a valid user name (1-64 of A-Z a-z 0-9 . _ @ -, starting alphanumeric). */
bool ct_users_name_valid(const char *name);

/* Creates a user with a new token written to token_out. limit < 0 means no approval limit.
 * CT_E_CONFLICT when the name is taken, CT_E_INVALID on a bad name or role. */
ct_rc ct_users_add(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                   enum ct_role role, long long limit, char token_out[CT_TOKEN_LEN + 1],
                   struct ct_err *err);
/* Changes the role (event user.role_changed); no event and CT_OK when unchanged. */
ct_rc ct_users_set_role(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                        enum ct_role role, struct ct_err *err);
/* Deactivates (event user.deactivated); CT_E_CONFLICT when already inactive. */
ct_rc ct_users_deactivate(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                          struct ct_err *err);
/* Replaces the token (event user.token_rotated); the old one stops working at once. */
ct_rc ct_users_rotate_token(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                            char token_out[CT_TOKEN_LEN + 1], struct ct_err *err);
/* Sets the sign-in password (len bytes, CT_PASSWORD_MIN to CT_PASSWORD_MAX, no NUL) as a scrypt
 * hash, ends the user's sessions, and records user.password_set with the hash's SHA-256 (so
 * verify notices a hash swapped behind the chain's back). CT_E_INVALID for a bad password,
 * CT_E_CONFLICT for a deactivated user. */
ct_rc ct_users_set_password(struct ct_pool *pool, const struct ct_actor *actor, const char *name,
                            const char *password, size_t len, struct ct_err *err);
/* Resolves a bearer token to an active user. CT_E_UNAUTHORIZED for unknown or inactive. */
ct_rc ct_users_authenticate(struct ct_pool *pool, const char *token, struct ct_user *out,
                            struct ct_err *err);

#endif
