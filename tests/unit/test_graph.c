/* test_graph.c: Graph request bodies byte for byte, the classification of every documented
 * answer, and a send to a closed port; no network beyond loopback. */
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

#include "casetrail/graph.h"
#include "t.h"

/* The success answer of whatsapp.md section 9. */
static const char SUCCESS[] =
    "{ \"messaging_product\": \"whatsapp\",\n"
    "  \"contacts\": [ { \"input\": \"923001234567\", \"wa_id\": \"923001234567\" } ],\n"
    "  \"messages\": [ { \"id\": \"wamid.HBgMOTIz...\", \"message_status\": \"accepted\" } ] }";

/* The error answer of whatsapp.md section 10. */
static const char ERROR_131030[] =
    "{ \"error\": {\n"
    "    \"message\": \"(#131030) Recipient phone number not in allowed list\",\n"
    "    \"type\": \"OAuthException\",\n"
    "    \"code\": 131030,\n"
    "    \"error_subcode\": 2655007,\n"
    "    \"error_data\": { \"messaging_product\": \"whatsapp\", \"details\": \"Recipient phone "
    "number not in allowed list: Add recipient phone number to recipient list and try again.\" "
    "},\n"
    "    \"error_user_title\": \"...\", \"error_user_msg\": \"...\",\n"
    "    \"fbtrace_id\": \"AazQ3r8x7nVd1Ll2mQpZ0kC\" } }";

/* A Graph error body with code and message. */
static char *error_body(int code, const char *message)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"error\":{\"message\":\"%s\",\"type\":\"OAuthException\",\"code\":%d,"
             "\"fbtrace_id\":\"Atrace\"}}",
             message, code);
    return buf;
}

static void classify(long status, const char *body, const char *retry_after,
                     struct ct_graph_result *r)
{
    ct_graph_classify(status, body, body != NULL ? strlen(body) : 0, retry_after, r);
}

static void text_bodies(void)
{
    char *s =
        ct_graph_text_json("923001234567", NULL, "We are sorry. A replacement ships today.", NULL);
    CHECK_STR(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                 "\"to\":\"923001234567\",\"type\":\"text\",\"text\":{\"preview_url\":false,"
                 "\"body\":\"We are sorry. A replacement ships today.\"}}");
    free(s);

    s = ct_graph_text_json("923001234567", NULL, "line 1\n\"quoted\" \xc3\xa9", "wamid.IN1");
    CHECK_STR(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                 "\"to\":\"923001234567\",\"type\":\"text\",\"text\":{\"preview_url\":false,"
                 "\"body\":\"line 1\\n\\\"quoted\\\" \xc3\xa9\"},"
                 "\"context\":{\"message_id\":\"wamid.IN1\"}}");
    free(s);

    /* no phone number: the BSUID goes in "recipient" */
    s = ct_graph_text_json(NULL, "PK.1502576394655843", "hi", NULL);
    CHECK_STR(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                 "\"recipient\":\"PK.1502576394655843\",\"type\":\"text\","
                 "\"text\":{\"preview_url\":false,\"body\":\"hi\"}}");
    free(s);

    /* both known: the phone number only, never both */
    s = ct_graph_text_json("923001234567", "PK.1502576394655843", "hi", "wamid.X");
    CHECK_STR(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                 "\"to\":\"923001234567\",\"type\":\"text\","
                 "\"text\":{\"preview_url\":false,\"body\":\"hi\"},"
                 "\"context\":{\"message_id\":\"wamid.X\"}}");
    free(s);

    CHECK(ct_graph_text_json(NULL, NULL, "hi", NULL) == NULL);
    CHECK(ct_graph_text_json("923001234567", NULL, NULL, NULL) == NULL);
}

static void template_bodies(void)
{
    char *s = ct_graph_template_json("923001234567", NULL, "ticket_update", "en_US", NULL);
    CHECK_STR(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                 "\"to\":\"923001234567\",\"type\":\"template\",\"template\":{"
                 "\"name\":\"ticket_update\",\"language\":{\"code\":\"en_US\"}}}");
    free(s);

    s = ct_graph_template_json(NULL, "PK.1502576394655843", "ticket_update", "en_US",
                               " [ { \"type\": \"body\", \"parameters\": [ { \"type\": \"text\","
                               " \"text\": \"CT-1042\" } ] } ] ");
    CHECK_STR(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                 "\"recipient\":\"PK.1502576394655843\",\"type\":\"template\",\"template\":{"
                 "\"name\":\"ticket_update\",\"language\":{\"code\":\"en_US\"},"
                 "\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
                 "\"text\":\"CT-1042\"}]}]}}");
    free(s);

    /* components must be one JSON array */
    CHECK(ct_graph_template_json("1", NULL, "t", "en", "{\"type\":\"body\"}") == NULL);
    CHECK(ct_graph_template_json("1", NULL, "t", "en", "[{\"type\":") == NULL);
    CHECK(ct_graph_template_json("1", NULL, "t", "en", "[] []") == NULL);
    CHECK(ct_graph_template_json("1", NULL, "t", "en", "[{\"a\":1,\"a\":2}]") == NULL);
    CHECK(ct_graph_template_json("1", NULL, "t", "en", "") == NULL);
    CHECK(ct_graph_template_json(NULL, NULL, "t", "en", NULL) == NULL);
    CHECK(ct_graph_template_json("1", NULL, NULL, "en", NULL) == NULL);
    CHECK(ct_graph_template_json("1", NULL, "t", NULL, NULL) == NULL);
}

static void classify_answers(void)
{
    struct ct_graph_result r;
    char big[600];

    classify(200, SUCCESS, NULL, &r);
    CHECK(r.outcome == CT_GRAPH_SENT);
    CHECK_STR(r.wamid, "wamid.HBgMOTIz...");
    CHECK_STR(r.title, "");
    CHECK(r.http_status == 200 && r.code == 0 && r.retry_after_s == 0);

    classify(400, ERROR_131030, NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    CHECK(r.code == 131030 && r.http_status == 400);
    CHECK_STR(r.title, "Recipient phone number not in allowed list");
    CHECK_STR(r.fbtrace_id, "AazQ3r8x7nVd1Ll2mQpZ0kC");
    CHECK_STR(r.wamid, "");

    classify(429, error_body(130429, "(#130429) Rate limit hit"), "7", &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.code == 130429 && r.retry_after_s == 7);
    CHECK_STR(r.title, "Rate limit hit");
    classify(429, NULL, "abc", &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.retry_after_s == 0);
    classify(429, "", " 12 ", &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.retry_after_s == 12);
    classify(429, "", "86401", &r);
    CHECK(r.retry_after_s == 0);
    classify(429, "", "-3", &r);
    CHECK(r.retry_after_s == 0);
    classify(429, "", "Wed, 21 Oct 2015 07:28:00 GMT", &r);
    CHECK(r.retry_after_s == 0);

    classify(500, "", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.http_status == 500 && r.code == 0);
    CHECK_STR(r.title, "empty answer (HTTP 500)");
    classify(502, "<html><body>Bad Gateway</body></html>", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_RETRY);
    CHECK_STR(r.title, "unreadable answer (HTTP 502)");
    /* a server error keeps Graph's code, and is retried even when the code is not listed */
    classify(503, error_body(100, "(#100) Invalid parameter"), NULL, &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.code == 100);

    classify(400,
             error_body(131056, "(#131056) (Business Account, Consumer Account) pair rate "
                                "limit hit"),
             NULL, &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.code == 131056);
    CHECK_STR(r.title, "(Business Account, Consumer Account) pair rate limit hit");
    CHECK_STR(r.fbtrace_id, "Atrace");
    classify(400, error_body(131047, "(#131047) Re-engagement message"), NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED && r.code == 131047);
    CHECK_STR(r.title, "Re-engagement message");
    /* 190 messages carry no "(#190)" prefix */
    classify(401, error_body(190, "Error validating access token: Session has expired"), NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED && r.code == 190);
    CHECK_STR(r.title, "Error validating access token: Session has expired");
    classify(400, error_body(131062, "(#131062) BSUID recipients not supported"), NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED && r.code == 131062);
    classify(403, error_body(4, "(#4) Application request limit reached"), NULL, &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.code == 4);
    classify(400, "<html>Bad Request</html>", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    CHECK_STR(r.title, "unreadable answer (HTTP 400)");
    classify(404, "{\"x\":1}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED && r.code == 0);

    /* no message: falls back to error_data.details */
    classify(400, "{\"error\":{\"code\":131008,\"error_data\":{\"details\":\"missing to\"}}}", NULL,
             &r);
    CHECK(r.outcome == CT_GRAPH_FAILED && r.code == 131008);
    CHECK_STR(r.title, "missing to");

    classify(200, "{\"messaging_product\":\"whatsapp\"}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    CHECK_STR(r.title, "answer without a message id");
    classify(200, "{\"messages\":[]}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    classify(200, "{\"messages\":[{\"id\":42}]}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    classify(200, "not json", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    CHECK_STR(r.title, "unreadable answer (HTTP 200)");

    /* a wamid that does not fit, or holds a byte a status webhook could never echo */
    memcpy(big, "{\"messages\":[{\"id\":\"wamid.", 26);
    memset(big + 26, 'A', 260);
    memcpy(big + 286, "\"}]}", 5);
    classify(200, big, NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    CHECK_STR(r.title, "invalid wamid in answer");
    CHECK_STR(r.wamid, "");
    classify(201, "{\"messages\":[{\"id\":\"wamid.a b\"}]}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    classify(201, "{\"messages\":[{\"id\":\"wamid.\\u0001\"}]}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    classify(201, "{\"messages\":[{\"id\":\"\"}]}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    classify(201, SUCCESS, NULL, &r);
    CHECK(r.outcome == CT_GRAPH_SENT);

    /* a long message is cut to fit, on a character boundary */
    memcpy(big, "{\"error\":{\"code\":100,\"message\":\"", 32);
    for (int i = 0; i < 200; i++)
        memcpy(big + 32 + 2 * i, "\xc3\xa9", 2);
    memcpy(big + 432, "\"}}", 4);
    classify(400, big, NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED && r.code == 100);
    CHECK(strlen(r.title) == 238);

    classify(0, NULL, NULL, &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.http_status == 0);

    CHECK(ct_graph_code_retryable(131000) && ct_graph_code_retryable(80007));
    CHECK(!ct_graph_code_retryable(0) && !ct_graph_code_retryable(131026));
}

/* A send to a port nothing listens on is a network error: retried, no HTTP status. */
static void send_refused(void)
{
    struct ct_graph_options opt = {.base_url = "http://127.0.0.1:9/v21.0",
                                   .token = "test-token",
                                   .connect_timeout_ms = 500,
                                   .total_timeout_ms = 2000};
    struct ct_graph_options bad = opt;
    const char *bad_urls[] = {NULL,
                              "",
                              "ftp://graph.example/v21.0",
                              "http://",
                              "https:///v21.0",
                              "graph.facebook.com/v21.0",
                              "http://a b/v21.0",
                              "http://x\n/v1"};
    struct ct_graph_result r;
    struct ct_graph *g = ct_graph_new(&opt);
    struct timespec t0, t1;
    char *body = ct_graph_text_json("923001234567", NULL, "hi", NULL);

    CHECK(g != NULL && body != NULL);
    if (g == NULL || body == NULL)
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ct_graph_send(g, "123456789012345", body, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.http_status == 0);
    CHECK(r.title[0] != '\0');
    CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1500);
    /* the same handle again: it must be reusable after an error */
    ct_graph_send(g, "123456789012345", body, &r);
    CHECK(r.outcome == CT_GRAPH_RETRY && r.http_status == 0);

    ct_graph_send(g, "123/../me", body, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED && r.http_status == 0);
    CHECK_STR(r.title, "phone number id must be 1-64 digits");
    ct_graph_send(g, "", body, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    ct_graph_send(g, NULL, body, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);

    bad.token = "abc\r\nX-Injected: 1";
    CHECK(ct_graph_new(&bad) == NULL);
    bad.token = "";
    CHECK(ct_graph_new(&bad) == NULL);
    CHECK(ct_graph_new(NULL) == NULL);
    bad.token = "test-token";
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        bad.base_url = bad_urls[i];
        CHECK(ct_graph_new(&bad) == NULL);
    }
out:
    ct_graph_free(g);
    free(body);
}

/* Marking a message read: the documented body, and {"success": true} is an acceptance with
 * no wamid (the sender refuses that answer for a real message). */
static void read_marks(void)
{
    struct ct_graph_result r;
    char *s = ct_graph_read_json("wamid.HBgM\"x");
    CHECK_STR(s, "{\"messaging_product\":\"whatsapp\",\"status\":\"read\","
                 "\"message_id\":\"wamid.HBgM\\\"x\"}");
    free(s);
    CHECK(ct_graph_read_json(NULL) == NULL);

    classify(200, "{\"success\":true}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_SENT);
    CHECK_STR(r.wamid, "");
    classify(200, "{\"success\":false}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    classify(200, "{\"success\":\"true\"}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
    classify(400, "{\"success\":true}", NULL, &r);
    CHECK(r.outcome == CT_GRAPH_FAILED);
}

int main(void)
{
    /* not thread-safe: once per process, before any handle (the server does it in main) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    text_bodies();
    template_bodies();
    classify_answers();
    send_refused();
    read_marks();
    ct_graph_free(NULL);
    curl_global_cleanup();
    T_DONE();
}
