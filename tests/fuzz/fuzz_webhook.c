/* fuzz_webhook.c: libFuzzer target for the internet-facing parser. Calls exactly what the
 * webhook handler calls: signature check, then ct_webhook_parse. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "casetrail/webhook.h"

#define SECRET "fuzz-secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "sha256=<hex HMAC-SHA256 of the body>", computed here rather than with the library's own hex
 * helpers so the check under test is not its own oracle. */
static void signature_header(const uint8_t *data, size_t size, char out[7 + 64 + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), data, size, md, &len) == NULL || len != 32)
        abort();
    memcpy(out, "sha256=", 7);
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* The correct header must pass and one with a single hex digit changed must not. Which digit,
 * and into what, follows from the input so the fuzzer reaches every position. */
static void check_signature(const char *body, const uint8_t *data, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    char header[7 + 64 + 1];
    size_t pos = 7 + (size > 0 ? data[0] % 64 : 0);
    int delta = 1 + (size > 1 ? data[size - 1] % 15 : 0); /* 1..15: never the same digit */
    const char *digit;

    signature_header(data, size, header);
    if (!ct_webhook_signature_ok(SECRET, body, size, header))
        abort();
    digit = strchr(hex, header[pos]);
    if (digit == NULL)
        abort();
    header[pos] = hex[(digit - hex + delta) % 16];
    if (ct_webhook_signature_ok(SECRET, body, size, header))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ct_wa_batch b;
    struct ct_err err;
    const char *body = (const char *)data;

    check_signature(body, data, size);
    if (ct_webhook_parse(body, size, &b, &err) == CT_OK) {
        /* touch every parsed field so the sanitizers see any dangling pointer */
        size_t n = 0;
        for (size_t i = 0; i < b.nmessages; i++) {
            const struct ct_wa_message *m = &b.messages[i];
            /* a customer is known by a phone number, a BSUID, or both: never neither */
            if (m->from == NULL && m->user_id == NULL)
                abort();
            n += strlen(m->wamid) + strlen(ct_wa_customer_id(m)) + strlen(m->type);
            n += m->from ? strlen(m->from) : 0;
            n += m->text ? strlen(m->text) : 0;
            n += m->profile_name ? strlen(m->profile_name) : 0;
            n += m->username ? strlen(m->username) : 0;
            n += m->target_wamid ? strlen(m->target_wamid) : 0;
        }
        for (size_t i = 0; i < b.nstatuses; i++) {
            n += strlen(b.statuses[i].wamid) + strlen(b.statuses[i].status);
            n += b.statuses[i].recipient_user_id ? strlen(b.statuses[i].recipient_user_id) : 0;
        }
        for (size_t i = 0; i < b.nrejects; i++)
            n += strlen(b.rejects[i].where) + strlen(b.rejects[i].reason);
        (void)n;
        ct_webhook_batch_free(&b);
    }
    return 0;
}
