/* auth.c: roles, token generation (OpenSSL RAND_bytes) and token hashing (SHA-256). */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "casetrail/auth.h"
#include "casetrail/text.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool ct_auth_token_new(char out[CT_TOKEN_LEN + 1])
{
    unsigned char raw[33];
    size_t pos = strlen(CT_TOKEN_PREFIX);

    /* 33 bytes = 264 bits, of which the 43 characters carry 258 */
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return false;
    memcpy(out, CT_TOKEN_PREFIX, pos);
    for (size_t i = 0; i + 2 < sizeof(raw) && pos < CT_TOKEN_LEN; i += 3) {
        unsigned v = ((unsigned)raw[i] << 16) | ((unsigned)raw[i + 1] << 8) | raw[i + 2];
        for (int k = 3; k >= 0 && pos < CT_TOKEN_LEN; k--)
            out[pos++] = b64url[(v >> (6 * k)) & 63];
    }
    out[CT_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return true;
}

void ct_auth_token_hash(const char *token, char out[CT_TOKEN_HASH_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL);
    ct_hex_encode(md, sizeof(md), out);
}

bool ct_auth_token_well_formed(const char *token)
{
    size_t plen = strlen(CT_TOKEN_PREFIX);
    if (token == NULL || strlen(token) != CT_TOKEN_LEN ||
        strncmp(token, CT_TOKEN_PREFIX, plen) != 0)
        return false;
    for (size_t i = plen; i < CT_TOKEN_LEN; i++) {
        if (strchr(b64url, token[i]) == NULL)
            return false;
    }
    return true;
}

const char *ct_auth_bearer(const char *header)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    header += 7;
    while (*header == ' ')
        header++;
    return *header != '\0' ? header : NULL;
}

bool ct_auth_role_at_least(enum ct_role have, enum ct_role need)
{
    if (have == CT_ROLE_NONE)
        return false;
    switch (need) {
    case CT_ROLE_NONE:
    case CT_ROLE_QA:
        return true; /* every role may read */
    case CT_ROLE_AGENT:
        return have == CT_ROLE_AGENT || have == CT_ROLE_SUPERVISOR || have == CT_ROLE_ADMIN;
    case CT_ROLE_SUPERVISOR:
        return have == CT_ROLE_SUPERVISOR || have == CT_ROLE_ADMIN;
    case CT_ROLE_ADMIN:
        return have == CT_ROLE_ADMIN;
    }
    return false;
}
