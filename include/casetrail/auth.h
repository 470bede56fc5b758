/* auth.h: staff roles, API token generation and hashing, and who may do what.
 * Tokens are 256 random bits; only their SHA-256 is stored, so a database leak reveals none. */
#ifndef CASETRAIL_AUTH_H
#define CASETRAIL_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "casetrail/model.h"


#define CT_TOKEN_PREFIX "ct_"
#define CT_TOKEN_LEN 46      /* "ct_" + 43 base64url characters */
#define CT_TOKEN_HASH_LEN 64 /* hex SHA-256 */

/* Writes a new random token (NUL-terminated, CT_TOKEN_LEN chars) into out[CT_TOKEN_LEN + 1].
 * Returns false when the system random source fails. */
bool ct_auth_token_new(char out[CT_TOKEN_LEN + 1]);
/* Writes the lowercase hex SHA-256 of token into out[CT_TOKEN_HASH_LEN + 1]. */
void ct_auth_token_hash(const char *token, char out[CT_TOKEN_HASH_LEN + 1]);
/* True when token has the shape of one of ours (prefix, length, alphabet): lets the server
 * answer 401 without a database round trip for garbage. */
bool ct_auth_token_well_formed(const char *token);
/* Extracts the token from an "Authorization: Bearer TOKEN" header value; NULL when absent or
 * malformed. Returns a pointer into header (borrowed). */
const char *ct_auth_bearer(const char *header);

/* Passwords (viewer sign-in) are kept as scrypt hashes with their parameters beside them:
 * "scrypt$LOG2N$r$p$SALT$KEY" (standard base64), so the cost can rise without resetting users. */
#define CT_PASSWORD_MIN 10
#define CT_PASSWORD_MAX 1024
#define CT_PASSWORD_HASH_MAX 160
/* Hashes password (len bytes) with a new random salt into out. false on a random source or
 * scrypt failure. */
bool ct_auth_password_hash(const char *password, size_t len, char out[CT_PASSWORD_HASH_MAX]);
/* True when password matches stored. stored NULL (no password set) or unreadable is false,
 * after the same work as a real check, so the answer's timing does not tell which. Parameters
 * beyond sane bounds (a tampered row asking for gigabytes) are refused, not computed. */
bool ct_auth_password_check(const char *password, size_t len, const char *stored);

/* Minimum-role check for a route: CT_ROLE_NONE means any authenticated user. qa is read-only,
 * admin has every right a supervisor has. */
bool ct_auth_role_at_least(enum ct_role have, enum ct_role need);

#endif
