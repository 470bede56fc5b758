/* test_audit.c: canonical encoding and hash-chain known answers. If these vectors change,
 * every stored chain stops verifying: bump the encoding version instead. */
#include <stdlib.h>

#include "casetrail/audit.h"
#include "t.h"

int main(void)
{
    unsigned char zero[CT_HASH_LEN] = {0}, h1[CT_HASH_LEN], h2[CT_HASH_LEN];
    char hex[2 * CT_HASH_LEN + 1];
    struct ct_event_fields ev = {
        .chain = "user:1", .seq = 1, .action = "user.created", .actor_type = "system",
        .actor_id = "cli", .from_value = NULL, .to_value = "agent",
        .occurred_us = 1760443200000000LL, .recorded_us = 1760443200000001LL,
        .data = "{\"approval_limit_minor\":null}", .digests = NULL,
    };

    char *canon = ct_audit_canonical(&ev);
    CHECK_STR(canon, "casetrail-event-v1\nchain:6:user:1\nseq:1:1\naction:12:user.created\n"
                     "actor_type:6:system\nactor_id:3:cli\nfrom:-\nto:5:agent\n"
                     "occurred_us:16:1760443200000000\nrecorded_us:16:1760443200000001\n"
                     "data:29:{\"approval_limit_minor\":null}\ndigests:-\n");
    free(canon);

    ct_audit_event_hash(zero, &ev, h1);
    ct_audit_event_hash(zero, &ev, h2);
    CHECK(memcmp(h1, h2, CT_HASH_LEN) == 0);
    ev.to_value = "admin";
    ct_audit_event_hash(zero, &ev, h2);
    CHECK(memcmp(h1, h2, CT_HASH_LEN) != 0);
    ev.to_value = "agent";
    ct_audit_event_hash(h1, &ev, h2); /* same event, other predecessor */
    CHECK(memcmp(h1, h2, CT_HASH_LEN) != 0);
    /* a NULL field and an empty one must hash differently */
    ev.from_value = "";
    ct_audit_event_hash(zero, &ev, h2);
    CHECK(memcmp(h1, h2, CT_HASH_LEN) != 0);

    /* canonical JSON: sorted keys, no spaces, jsonb-style input round-trips */
    cJSON *j = cJSON_Parse("{\"b\": 2, \"a\": {\"y\": \"\\u00e9\\n\", \"x\": [1, true, null]}}");
    char *cj = ct_audit_canonical_json(j);
    CHECK_STR(cj, "{\"a\":{\"x\":[1,true,null],\"y\":\"\xc3\xa9\\u000a\"},\"b\":2}");
    free(cj);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"lat\": 1.5}");
    CHECK(ct_audit_canonical_json(j) == NULL); /* non-integers are refused */
    cJSON_Delete(j);

    /* HMAC-SHA256 known answer (RFC 4231 test case 2) */
    ct_audit_text_digest((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    unsigned char back[4];
    CHECK(ct_hex_decode("00ff10Ab", back, 4) && back[1] == 0xff && back[3] == 0xab);
    CHECK(!ct_hex_decode("00ff10A", back, 4));
    CHECK(!ct_hex_decode("00ff10zz", back, 4));
    T_DONE();
}
