/* fuzz_webhook.c: libFuzzer target for the internet-facing parser. Calls exactly what the
 * webhook handler calls: signature check, then ct_webhook_parse. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "casetrail/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ct_wa_batch b;
    struct ct_err err;
    const char *body = (const char *)data;

    (void)ct_webhook_signature_ok("fuzz-secret", body, size, "sha256=00");
    if (ct_webhook_parse(body, size, &b, &err) == CT_OK) {
        /* touch every parsed field so the sanitizers see any dangling pointer */
        size_t n = 0;
        for (size_t i = 0; i < b.nmessages; i++) {
            n += strlen(b.messages[i].wamid) + strlen(b.messages[i].from) + strlen(b.messages[i].type);
            n += b.messages[i].text ? strlen(b.messages[i].text) : 0;
            n += b.messages[i].profile_name ? strlen(b.messages[i].profile_name) : 0;
        }
        for (size_t i = 0; i < b.nstatuses; i++)
            n += strlen(b.statuses[i].wamid) + strlen(b.statuses[i].status);
        (void)n;
        ct_webhook_batch_free(&b);
    }
    return 0;
}
