/* auth.c: roles, token generation (OpenSSL RAND_bytes), token hashing (SHA-256) and password
 * hashing (scrypt, memory-hard, so a stolen hash is slow to guess at). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
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

/* ---- passwords ---- */

/* scrypt N = 2^15, r = 8, p = 1: 32 MiB and about 0.1 s a check on the development machine;
 * OWASP's minimum for scrypt. Raising them only affects new hashes. */
#define PW_LOG2N 15
#define PW_R 8
#define PW_P 1
#define PW_SALT 16
#define PW_KEY 32

static bool scrypt(const char *pw, size_t len, const unsigned char *salt, size_t saltlen,
                   int log2n, int r, int p, unsigned char *key, size_t keylen)
{
    uint64_t n = (uint64_t)1 << log2n;
    /* 128 * r * N for the work area, with room for p and OpenSSL's bookkeeping */
    uint64_t maxmem = 128ull * (uint64_t)r * (n + (uint64_t)p + 2) + (1u << 20);
    return EVP_PBE_scrypt(pw, len, salt, saltlen, n, (uint64_t)r, (uint64_t)p, maxmem, key,
                          keylen) == 1;
}

bool ct_auth_password_hash(const char *password, size_t len, char out[CT_PASSWORD_HASH_MAX])
{
    unsigned char salt[PW_SALT], key[PW_KEY];
    unsigned char salt64[4 * ((PW_SALT + 2) / 3) + 1], key64[4 * ((PW_KEY + 2) / 3) + 1];
    bool ok = RAND_bytes(salt, sizeof(salt)) == 1 &&
              scrypt(password, len, salt, sizeof(salt), PW_LOG2N, PW_R, PW_P, key, sizeof(key));
    if (ok) {
        EVP_EncodeBlock(salt64, salt, sizeof(salt));
        EVP_EncodeBlock(key64, key, sizeof(key));
        ok = snprintf(out, CT_PASSWORD_HASH_MAX, "scrypt$%d$%d$%d$%s$%s", PW_LOG2N, PW_R, PW_P,
                      (char *)salt64, (char *)key64) < CT_PASSWORD_HASH_MAX;
    }
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(key64, sizeof(key64));
    return ok;
}

/* Decodes base64 text of exactly want bytes; false otherwise. */
static bool b64_exact(const char *text, size_t textlen, unsigned char *out, size_t want)
{
    unsigned char buf[96];
    size_t pad = 0;
    if (textlen == 0 || textlen % 4 != 0 || textlen / 4 * 3 > sizeof(buf))
        return false;
    while (pad < 2 && text[textlen - 1 - pad] == '=')
        pad++;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)textlen);
    if (n < 0 || (size_t)n - pad != want)
        return false;
    memcpy(out, buf, want);
    return true;
}

/* Splits "scrypt$L$r$p$SALT$KEY"; false when unreadable or out of bounds. */
static bool parse_hash(const char *stored, int *log2n, int *r, int *p, unsigned char *salt,
                       unsigned char *key)
{
    int used = 0;
    if (stored == NULL || sscanf(stored, "scrypt$%d$%d$%d$%n", log2n, r, p, &used) != 3 ||
        used == 0)
        return false;
    /* bounds: at most 2^20 * 8 * 128 = 1 GiB would be absurd; cap near 256 MiB */
    if (*log2n < 10 || *log2n > 20 || *r < 1 || *r > 16 || *p < 1 || *p > 4 ||
        (128ull << *log2n) * (unsigned)*r > (256ull << 20))
        return false;
    const char *s = stored + used, *dollar = strchr(s, '$');
    return dollar != NULL && b64_exact(s, (size_t)(dollar - s), salt, PW_SALT) &&
           b64_exact(dollar + 1, strlen(dollar + 1), key, PW_KEY);
}

bool ct_auth_password_check(const char *password, size_t len, const char *stored)
{
    static const unsigned char dummy_salt[PW_SALT] = {0};
    unsigned char salt[PW_SALT], want[PW_KEY], got[PW_KEY];
    int log2n, r, p;
    bool readable = parse_hash(stored, &log2n, &r, &p, salt, want);
    bool ok;

    if (!readable) {
        /* the same work as a real check, then no */
        scrypt(password, len, dummy_salt, sizeof(dummy_salt), PW_LOG2N, PW_R, PW_P, got,
               sizeof(got));
        OPENSSL_cleanse(got, sizeof(got));
        return false;
    }
    ok = scrypt(password, len, salt, sizeof(salt), log2n, r, p, got, sizeof(got)) &&
         CRYPTO_memcmp(got, want, sizeof(got)) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}
