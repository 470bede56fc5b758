/* test_webhook.c: signature verification, UTF-8 validation and parsing of every shared fixture.
 * Runs from the repository root; fixtures are read from ../shared/fixtures/whatsapp/. */
#include <stdlib.h>

#include <openssl/hmac.h>

#include "casetrail/audit.h"
#include "casetrail/webhook.h"
#include "t.h"

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "../shared/fixtures/whatsapp/%s", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        t_failures++;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Parses a fixture and checks message/status counts and the first message's type. */
static void expect(const char *name, size_t nmsg, size_t nst, const char *type)
{
    size_t len = 0;
    char *body = slurp(name, &len);
    struct ct_wa_batch b;
    struct ct_err err;
    if (body == NULL)
        return;
    if (ct_webhook_parse(body, len, &b, &err) != CT_OK) {
        fprintf(stderr, "%s: %s\n", name, err.message);
        t_failures++;
        free(body);
        return;
    }
    if (b.nmessages != nmsg || b.nstatuses != nst) {
        fprintf(stderr, "%s: %zu messages, %zu statuses\n", name, b.nmessages, b.nstatuses);
        t_failures++;
    }
    if (type != NULL && nmsg > 0)
        CHECK_STR(b.messages[0].type, type);
    for (size_t i = 0; i < b.nmessages; i++) {
        CHECK(b.messages[i].ts > 1700000000);
        CHECK(strncmp(b.messages[i].wamid, "wamid.", 6) == 0);
    }
    ct_webhook_batch_free(&b);
    free(body);
}

/* Parses fixture name into b (caller frees); false when it cannot. */
static bool parse_fixture(const char *name, struct ct_wa_batch *b)
{
    size_t len = 0;
    struct ct_err err;
    char *body = slurp(name, &len);
    bool ok = body != NULL && ct_webhook_parse(body, len, b, &err) == CT_OK;
    free(body);
    CHECK(ok);
    return ok;
}

/* 2026 shapes: BSUIDs and usernames, edits and deletions, echoes of the Business app. */
static void shapes_2026(void)
{
    struct ct_wa_batch b;
    if (parse_fixture("username_only_bsuid.json", &b) && b.nmessages == 1) {
        CHECK(b.messages[0].from == NULL);
        CHECK_STR(b.messages[0].user_id, "PK.4471209953318802");
        CHECK_STR(b.messages[0].username, "@sana.t");
        CHECK_STR(b.messages[0].profile_name, "Sana Tariq");
        CHECK_STR(ct_wa_customer_id(&b.messages[0]), "PK.4471209953318802");
        ct_webhook_batch_free(&b);
    }
    if (parse_fixture("edit_text.json", &b) && b.nmessages == 1) {
        CHECK_STR(b.messages[0].type, "edit");
        CHECK_STR(b.messages[0].text, "any update on my refund? it has been 10 days");
        CHECK_STR(b.messages[0].target_wamid,
                  "wamid.HBgMOTIzMDAxMjM0NTY3FQIAEhgUMkJCNUFDRTI5RkQ3ODE0MDlBQkMA");
        ct_webhook_batch_free(&b);
    }
    if (parse_fixture("revoke.json", &b) && b.nmessages == 1) {
        CHECK(b.messages[0].text == NULL && b.messages[0].target_wamid != NULL);
        ct_webhook_batch_free(&b);
    }
    if (parse_fixture("smb_message_echo.json", &b) && b.nmessages == 1) {
        CHECK(b.messages[0].echo);
        CHECK_STR(b.messages[0].from, "923001234567"); /* the customer, not the shop */
        CHECK_STR(b.messages[0].user_id, "PK.9013377520164431");
        ct_webhook_batch_free(&b);
    }
    if (parse_fixture("status_delivered_to_bsuid.json", &b) && b.nstatuses == 1) {
        CHECK(b.statuses[0].recipient_id == NULL);
        CHECK_STR(b.statuses[0].recipient_user_id, "PK.4471209953318802");
        CHECK_STR(b.statuses[0].username, "@sana.t");
        ct_webhook_batch_free(&b);
    }
    if (parse_fixture("system_customer_changed_number.json", &b) && b.nmessages == 1) {
        CHECK_STR(b.messages[0].from, "923001234567");
        CHECK_STR(b.messages[0].new_wa_id, "923451239876");
        ct_webhook_batch_free(&b);
    }
}

/* One malformed entry among good ones: only it is refused, with a reason naming the field. */
static void poisoned_entries(void)
{
    static const struct {
        const char *entry, *reason;
    } cases[] = {
        {"{\"from\":\"92\",\"id\":\"LONG\",\"timestamp\":\"1760000000\",\"type\":\"text\"}",
         "message id"},
        {"{\"from\":\"92 30\",\"id\":\"wamid.b\",\"timestamp\":\"1760000000\",\"type\":\"text\"}",
         "sender"},
        {"{\"from\":\"92\",\"id\":\"wamid.b\",\"timestamp\":\"soon\",\"type\":\"text\"}",
         "timestamp"},
        {"{\"from\":\"92\",\"id\":\"wamid.b\",\"timestamp\":\"1760000000\",\"type\":\"Te xt\"}",
         "type"},
        {"{\"from\":\"92\",\"id\":\"wamid.b\",\"timestamp\":\"1760000000\",\"type\":\"text\","
         "\"context\":{\"id\":\"a b\"}}",
         "replies"},
        {"[1]", "not an object"},
    };
    char *longid = malloc(3100);
    memcpy(longid, "wamid.", 6);
    memset(longid + 6, 'A', 3000);
    longid[3006] = '\0';
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ct_wa_batch b;
        struct ct_err err;
        char body[4096 + 200];
        const char *entry = cases[i].entry;
        char *e = NULL;
        if (strstr(entry, "LONG") != NULL) {
            e = malloc(strlen(entry) + 3100);
            const char *at = strstr(entry, "LONG");
            sprintf(e, "%.*s%s%s", (int)(at - entry), entry, longid, at + 4);
            entry = e;
        }
        snprintf(body, sizeof(body),
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
                 "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"117\"},"
                 "\"messages\":[{\"from\":\"92\",\"id\":\"wamid.ok\",\"timestamp\":\"1760000000\","
                 "\"type\":\"text\",\"text\":{\"body\":\"hi\"}},%s]}}]}]}",
                 entry);
        free(e);
        CHECK(ct_webhook_parse(body, strlen(body), &b, &err) == CT_OK);
        CHECK(b.nmessages == 1 && b.nrejects == 1);
        if (b.nrejects == 1 && strstr(b.rejects[0].reason, cases[i].reason) == NULL) {
            fprintf(stderr, "case %zu: reason \"%s\" lacks \"%s\"\n", i, b.rejects[0].reason,
                    cases[i].reason);
            t_failures++;
        }
        if (b.nrejects == 1)
            CHECK_STR(b.rejects[0].where, "entry[0].changes[0].value.messages[1]");
        ct_webhook_batch_free(&b);
    }
    free(longid);
}

int main(void)
{
    const char *secret = "test-app-secret";
    const char *body = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
    unsigned char mac[32];
    unsigned int maclen = 0;
    char hex[65], header[80];
    struct ct_wa_batch b;
    struct ct_err err;

    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body), mac,
         &maclen);
    ct_hex_encode(mac, 32, hex);
    snprintf(header, sizeof(header), "sha256=%s", hex);
    CHECK(ct_webhook_signature_ok(secret, body, strlen(body), header));
    CHECK(!ct_webhook_signature_ok("other", body, strlen(body), header));
    CHECK(!ct_webhook_signature_ok(secret, body, strlen(body) - 1, header));
    CHECK(!ct_webhook_signature_ok(secret, body, strlen(body), NULL));
    CHECK(!ct_webhook_signature_ok(secret, body, strlen(body), hex));
    header[10] = 'g';
    CHECK(!ct_webhook_signature_ok(secret, body, strlen(body), header));
    CHECK(!ct_webhook_signature_ok(secret, body, strlen(body), "sha256=abcd"));

    CHECK(ct_utf8_valid("plain", 5));
    CHECK(ct_utf8_valid("\xd8\xb4\xda\xa9\xd8\xa7\xdb\x8c\xd8\xaa", 10)); /* Urdu */
    CHECK(ct_utf8_valid("\xf0\x9f\x98\xa1", 4));                         /* emoji */
    CHECK(!ct_utf8_valid("\xff", 1));
    CHECK(!ct_utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!ct_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!ct_utf8_valid("\xf0\x9f\x98", 3));     /* truncated */
    CHECK(!ct_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */

    CHECK(ct_webhook_parse("{", 1, &b, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "invalid_json");
    CHECK(ct_webhook_parse("{\"object\":\"page\"}", 17, &b, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "not_whatsapp");
    CHECK(ct_webhook_parse(body, strlen(body), &b, &err) == CT_OK);
    CHECK(b.nmessages == 0 && b.nstatuses == 0);
    ct_webhook_batch_free(&b);

    expect("text.json", 1, 0, "text");
    expect("text_reply_context.json", 1, 0, "text");
    expect("image.json", 1, 0, "image");
    expect("audio_voice.json", 1, 0, "audio");
    expect("video.json", 1, 0, "video");
    expect("document.json", 1, 0, "document");
    expect("sticker.json", 1, 0, "sticker");
    expect("location.json", 1, 0, "location");
    expect("contacts.json", 1, 0, "contacts");
    expect("interactive_button_reply.json", 1, 0, "interactive");
    expect("interactive_list_reply.json", 1, 0, "interactive");
    expect("button.json", 1, 0, "button");
    expect("reaction.json", 1, 0, "reaction");
    expect("order.json", 1, 0, "order");
    expect("system_customer_changed_number.json", 1, 0, "system");
    expect("unsupported.json", 1, 0, "unsupported");
    expect("referral_ad.json", 1, 0, "text");
    expect("status_sent.json", 0, 1, NULL);
    expect("status_delivered.json", 0, 1, NULL);
    expect("status_read.json", 0, 1, NULL);
    expect("status_failed.json", 0, 1, NULL);
    expect("batch_multi_entry.json", 3, 2, "text");
    expect("non_ascii_roman_urdu.json", 1, 0, "text");
    expect("two_business_numbers.json", 2, 0, "text");

    /* details: reply threading, reaction target, profile join, failed status error */
    size_t len;
    char *raw = slurp("reaction.json", &len);
    if (raw != NULL && ct_webhook_parse(raw, len, &b, &err) == CT_OK) {
        CHECK(b.messages[0].context_wamid != NULL);
        CHECK(b.messages[0].text != NULL); /* the emoji */
        ct_webhook_batch_free(&b);
    }
    free(raw);
    raw = slurp("status_failed.json", &len);
    if (raw != NULL && ct_webhook_parse(raw, len, &b, &err) == CT_OK) {
        CHECK(b.statuses[0].error_code == 131026);
        CHECK_STR(b.statuses[0].status, "failed");
        ct_webhook_batch_free(&b);
    }
    free(raw);
    raw = slurp("system_customer_changed_number.json", &len);
    if (raw != NULL && ct_webhook_parse(raw, len, &b, &err) == CT_OK) {
        CHECK(b.messages[0].profile_name == NULL); /* no contacts array on system messages */
        CHECK(b.messages[0].from != NULL);
        ct_webhook_batch_free(&b);
    }
    free(raw);

    /* shapes the fixtures lack: a BSUID change with no "from", a Flows reply, a number */
    const char *more =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":["
        "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"117\"},"
        "\"messages\":[{\"id\":\"wamid.s1\",\"timestamp\":\"1760000000\",\"type\":\"system\","
        "\"system\":{\"type\":\"user_changed_user_id\",\"user_id\":\"US.1\",\"body\":\"changed\"}},"
        "{\"from\":\"9230\",\"id\":\"wamid.f1\",\"timestamp\":1760000001,\"type\":\"interactive\","
        "\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"name\":\"flow\",\"body\":\"Sent\","
        "\"response_json\":\"{}\"}}},"
        "{\"from\":\"9230\",\"id\":\"wamid.n1\",\"timestamp\":\"1760000002\"}]}},"
        "{\"field\":\"account_update\",\"value\":{\"x\":1}},"
        "{\"field\":\"messages\",\"value\":{\"messages\":[{\"id\":\"wamid.nopnid\"}]}}]}]}";
    CHECK(ct_webhook_parse(more, strlen(more), &b, &err) == CT_OK);
    CHECK(b.nmessages == 3);
    CHECK(b.nrejects == 1); /* the message under a change without metadata.phone_number_id */
    if (b.nrejects == 1) {
        CHECK_STR(b.rejects[0].where, "entry[0].changes[2].value.messages[0]");
        CHECK(strstr(b.rejects[0].reason, "phone_number_id") != NULL);
        CHECK_STR(b.rejects[0].kind, "message");
    }
    if (b.nmessages == 3) {
        CHECK_STR(b.messages[0].from, "US.1");
        CHECK_STR(b.messages[0].text, "changed");
        CHECK_STR(b.messages[1].text, "Sent");
        CHECK(b.messages[1].ts == 1760000001);
        CHECK_STR(b.messages[2].type, "unknown"); /* no type: kept, not dropped */
    }
    ct_webhook_batch_free(&b);
    const char *trailing = "{\"object\":\"whatsapp_business_account\",\"entry\":[]} x";
    CHECK(ct_webhook_parse(trailing, strlen(trailing), &b, &err) == CT_E_INVALID);
    CHECK(ct_webhook_parse(trailing, strlen(trailing) - 2, &b, &err) == CT_OK); /* without " x" */
    ct_webhook_batch_free(&b);

    poisoned_entries();
    shapes_2026();
    CHECK(ct_webhook_status_rank("read") > ct_webhook_status_rank("delivered"));
    CHECK(ct_webhook_status_rank("failed") > ct_webhook_status_rank("read"));
    CHECK(ct_webhook_status_rank("weird") == 0);
    T_DONE();
}
