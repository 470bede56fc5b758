/* graph.c: the Cloud API client: request bodies built with cJSON, one kept-alive libcurl handle
 * per sender thread, and the classification of every Graph answer (whatsapp.md sections 9-11). */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "casetrail/buf.h"
#include "casetrail/graph.h"
#include "casetrail/json.h"
#include "casetrail/text.h"

/* Graph answers to a send are a few hundred bytes; anything near this is not Graph. */
#define ANSWER_MAX (1024 * 1024)
/* Used when the options leave a timeout at 0: curl's own defaults wait minutes. */
#define DEFAULT_CONNECT_MS 5000L
#define DEFAULT_TOTAL_MS 15000L
/* A phone number id is a Graph object id: digits, well under this. */
#define PNID_MAX 64
/* Meta's Retry-After values are seconds; a day is already far past any sane backoff. */
#define RETRY_AFTER_MAX 86400L

struct ct_graph {
    CURL *curl;                 /* owned; its connection cache is what keeps Graph warm */
    struct curl_slist *headers; /* owned; holds the bearer token, wiped on free */
    char *base_url;             /* owned copy */
};

/* What one exchange collects: the body (bounded) and the last Retry-After seen. */
struct exchange {
    struct ct_buf body;
    size_t received; /* body bytes kept so far */
    bool too_large;
    char retry_after[32];
    size_t limit;    /* downloads: the caller's byte limit */
};

/* Wipes and frees a header list: its strings hold the token. */
static void free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p != NULL; p = p->next)
        OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* True when s can go into a header line as is: no CR, LF or other control byte, so a token
 * from the environment cannot add a header of its own. */
static bool header_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* Builds the fixed header list; NULL on OOM. The token passes through one temporary buffer,
 * wiped before it is freed, and then lives only in the list. */
static struct curl_slist *make_headers(const char *token)
{
    /* curl would otherwise send "Expect: 100-continue" for bodies over 1 KiB and wait up to a
     * second for a server that never answers it */
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Accept: application/json", "Expect:"};
    struct curl_slist *h = NULL, *next;
    struct ct_buf auth;
    char *line = NULL;
    size_t len = 0;

    ct_buf_init(&auth, 0);
    ct_buf_adds(&auth, "Authorization: Bearer ");
    ct_buf_adds(&auth, token);
    line = ct_buf_take(&auth, &len);
    if (line == NULL)
        goto fail;
    next = curl_slist_append(h, line);
    OPENSSL_cleanse(line, len);
    free(line);
    if (next == NULL)
        goto fail;
    h = next;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        next = curl_slist_append(h, fixed[i]);
        if (next == NULL)
            goto fail;
        h = next;
    }
    return h;
fail:
    free_headers(h);
    return NULL;
}

/* A base URL curl will at least try: http(s), printable. Checked once here, so a typo in the
 * configuration stops the start instead of turning every send into a retry. */
static bool url_ok(const char *u)
{
    if (u == NULL || !header_safe(u) || strchr(u, ' ') != NULL)
        return false;
    if (strncmp(u, "https://", 8) == 0)
        return u[8] != '\0' && u[8] != '/';
    if (strncmp(u, "http://", 7) == 0)
        return u[7] != '\0' && u[7] != '/';
    return false;
}

struct ct_graph *ct_graph_new(const struct ct_graph_options *opt)
{
    struct ct_graph *g = NULL;
    long connect_ms, total_ms;
    CURLcode rc = CURLE_OK;

    if (opt == NULL || !url_ok(opt->base_url) || opt->token == NULL || opt->token[0] == '\0' ||
        !header_safe(opt->token))
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->base_url = strdup(opt->base_url);
    if (g->base_url != NULL) {
        /* ".../v21.0/" would make ".../v21.0//123/messages", which Graph does not route */
        size_t n = strlen(g->base_url);
        while (n > 0 && g->base_url[n - 1] == '/')
            g->base_url[--n] = '\0';
    }
    g->headers = make_headers(opt->token);
    g->curl = curl_easy_init();
    if (g->base_url == NULL || g->headers == NULL || g->curl == NULL)
        goto fail;

    connect_ms = opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : DEFAULT_CONNECT_MS;
    total_ms = opt->total_timeout_ms > 0 ? opt->total_timeout_ms : DEFAULT_TOTAL_MS;
    /* TLS peer and host verification stay at curl's defaults (on): never turned off here */
    rc = curl_easy_setopt(g->curl, CURLOPT_NOSIGNAL, 1L); /* signals and threads do not mix */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_TIMEOUT_MS, total_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_HTTPHEADER, g->headers);
    if (rc == CURLE_OK) /* a dead idle connection is noticed before the next send needs it */
        rc = curl_easy_setopt(g->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_USERAGENT, "casetrail");
#if LIBCURL_VERSION_NUM >= 0x075500
    /* only HTTP(S): a misconfigured base URL must not reach file:// or anything else */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
    if (rc != CURLE_OK)
        goto fail;
    return g;
fail:
    ct_graph_free(g);
    return NULL;
}

void ct_graph_free(struct ct_graph *g)
{
    if (g == NULL)
        return;
    if (g->curl != NULL)
        curl_easy_cleanup(g->curl); /* before the headers it points at */
    free_headers(g->headers);
    free(g->base_url);
    free(g);
}

bool ct_graph_code_retryable(int code)
{
    /* whatsapp.md section 11, the retry policy */
    switch (code) {
    case 1:
    case 2:
    case 4:
    case 80007:
    case 130429:
    case 131000:
    case 131016:
    case 131056:
    case 131057:
        return true;
    default:
        return false;
    }
}

/* Copies text from Graph into dst (cap bytes) for logs and the database: cut on a UTF-8
 * boundary, control bytes turned into spaces, invalid UTF-8 into '?'. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--; /* src[n] continues a sequence: cutting here would split it */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            dst[i] = ' ';
    }
    ct_utf8_sanitize(dst);
}

/* A string member of obj, or NULL when absent or of another type. */
static const char *str_member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "(#131030) Recipient ..." -> "Recipient ...": the code is kept in its own field. */
static const char *strip_code_prefix(const char *m)
{
    const char *p = m;
    if (p[0] != '(' || p[1] != '#' || !isdigit((unsigned char)p[2]))
        return m;
    for (p += 2; isdigit((unsigned char)*p); p++)
        ;
    if (p[0] != ')')
        return m;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

/* Reads Graph's error object into out (code, title, fbtrace_id); false when there is none. */
static bool read_error(const cJSON *root, struct ct_graph_result *out)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *code, *data;
    const char *msg, *trace;

    if (!cJSON_IsObject(e))
        return false;
    code = cJSON_GetObjectItemCaseSensitive(e, "code");
    /* range first: casting an out-of-range double to int is undefined */
    if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble <= INT_MAX &&
        code->valuedouble == (double)(int)code->valuedouble)
        out->code = (int)code->valuedouble;
    msg = str_member(e, "message");
    if (msg != NULL)
        msg = strip_code_prefix(msg);
    if (msg == NULL || msg[0] == '\0') {
        data = cJSON_GetObjectItemCaseSensitive(e, "error_data");
        msg = cJSON_IsObject(data) ? str_member(data, "details") : NULL;
    }
    if (msg != NULL)
        copy_text(out->title, sizeof(out->title), msg);
    trace = str_member(e, "fbtrace_id");
    if (trace != NULL)
        copy_text(out->fbtrace_id, sizeof(out->fbtrace_id), trace);
    return true;
}

/* messages[0].id of a success answer, or NULL. */
static const char *first_message_id(const cJSON *root)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    const cJSON *first = cJSON_IsArray(msgs) ? cJSON_GetArrayItem(msgs, 0) : NULL;
    return cJSON_IsObject(first) ? str_member(first, "id") : NULL;
}

/* A wamid we can store and match statuses against: 1-255 visible ASCII bytes. */
static bool wamid_ok(const char *id, size_t cap)
{
    size_t n = strlen(id);
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/* Retry-After as whole seconds in [0, RETRY_AFTER_MAX]; 0 for anything else (an HTTP date
 * included: Graph sends seconds, and 0 leaves the caller's own backoff in charge). */
static long parse_retry_after(const char *v)
{
    long n = 0;
    if (v == NULL)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!isdigit((unsigned char)*v))
        return 0;
    for (; isdigit((unsigned char)*v); v++) {
        n = n * 10 + (*v - '0');
        if (n > RETRY_AFTER_MAX)
            return 0;
    }
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
        v++;
    return *v == '\0' ? n : 0;
}

void ct_graph_classify(long http_status, const char *body, size_t len, const char *retry_after,
                       struct ct_graph_result *out)
{
    struct ct_err err;
    cJSON *root = NULL;
    bool server_side = http_status == 429 || http_status >= 500;
    bool success = http_status >= 200 && http_status <= 299;
    const char *id;

    memset(out, 0, sizeof(*out));
    out->http_status = http_status;
    out->retry_after_s = parse_retry_after(retry_after);
    if (http_status <= 0) {
        out->outcome = CT_GRAPH_RETRY;
        snprintf(out->title, sizeof(out->title), "no answer");
        return;
    }
    if (body != NULL && len > 0)
        root = ct_json_parse_strict(body, len, CT_JSON_DEPTH_WEBHOOK, &err);
    if (root == NULL) {
        /* an HTML page from a proxy, an empty 500, a cut-off answer */
        out->outcome = server_side ? CT_GRAPH_RETRY : CT_GRAPH_FAILED;
        snprintf(out->title, sizeof(out->title), "%s answer (HTTP %ld)",
                 body == NULL || len == 0 ? "empty" : "unreadable", http_status);
        return;
    }
    if (success) {
        id = first_message_id(root);
        if (id != NULL && wamid_ok(id, sizeof(out->wamid))) {
            out->outcome = CT_GRAPH_SENT;
            memcpy(out->wamid, id, strlen(id) + 1);
            goto out;
        }
        if (id != NULL) {
            out->outcome = CT_GRAPH_FAILED;
            snprintf(out->title, sizeof(out->title), "invalid wamid in answer");
            goto out;
        }
        /* marking a message read answers {"success": true} and no message id */
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "success"))) {
            out->outcome = CT_GRAPH_SENT;
            goto out;
        }
    }
    if (read_error(root, out)) {
        if (server_side || ct_graph_code_retryable(out->code))
            out->outcome = CT_GRAPH_RETRY;
        else
            out->outcome = CT_GRAPH_FAILED;
        if (out->title[0] == '\0')
            snprintf(out->title, sizeof(out->title), "Graph error %d (HTTP %ld)", out->code,
                     http_status);
        goto out;
    }
    /* JSON, but neither a message id nor an error object */
    out->outcome = server_side ? CT_GRAPH_RETRY : CT_GRAPH_FAILED;
    if (success)
        snprintf(out->title, sizeof(out->title), "answer without a message id");
    else
        snprintf(out->title, sizeof(out->title), "answer without a Graph error (HTTP %ld)",
                 http_status);
out:
    cJSON_Delete(root);
}

char *ct_graph_read_json(const char *wamid)
{
    cJSON *j;
    char *s = NULL;

    if (wamid == NULL)
        return NULL;
    j = cJSON_CreateObject();
    if (j != NULL && cJSON_AddStringToObject(j, "messaging_product", "whatsapp") != NULL &&
        cJSON_AddStringToObject(j, "status", "read") != NULL &&
        cJSON_AddStringToObject(j, "message_id", wamid) != NULL)
        s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* Starts a send body with the fields every message shares; NULL on OOM or no recipient. */
static cJSON *start_body(const char *to, const char *recipient_user_id, const char *type)
{
    cJSON *j = NULL;
    bool ok;

    if (to == NULL && recipient_user_id == NULL)
        return NULL;
    j = cJSON_CreateObject();
    if (j == NULL)
        return NULL;
    ok = cJSON_AddStringToObject(j, "messaging_product", "whatsapp") != NULL &&
         cJSON_AddStringToObject(j, "recipient_type", "individual") != NULL;
    /* the phone number when known (Meta's advice); never both: "to" would win anyway, and a
     * reader of our logs should not have to know that */
    if (ok && to != NULL)
        ok = cJSON_AddStringToObject(j, "to", to) != NULL;
    else if (ok)
        ok = cJSON_AddStringToObject(j, "recipient", recipient_user_id) != NULL;
    if (ok)
        ok = cJSON_AddStringToObject(j, "type", type) != NULL;
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* A reply's quote: context.message_id when reply_to is set; false on OOM. */
static bool add_context(cJSON *j, const char *reply_to)
{
    cJSON *ctx;
    if (reply_to == NULL)
        return true;
    ctx = cJSON_AddObjectToObject(j, "context");
    return ctx != NULL && cJSON_AddStringToObject(ctx, "message_id", reply_to) != NULL;
}

/* Ends a send body that ok says was built: the quote, when reply_to is set, then the JSON text
 * (caller frees). Takes and frees j; NULL on any failure. */
static char *finish_body(cJSON *j, bool ok, const char *reply_to)
{
    char *s = ok && add_context(j, reply_to) ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

char *ct_graph_text_json(const char *to, const char *recipient_user_id, const char *text,
                         const char *reply_to)
{
    cJSON *j, *t;

    if (text == NULL)
        return NULL;
    j = start_body(to, recipient_user_id, "text");
    if (j == NULL)
        return NULL;
    t = cJSON_AddObjectToObject(j, "text");
    return finish_body(j, t != NULL && cJSON_AddFalseToObject(t, "preview_url") != NULL &&
                              cJSON_AddStringToObject(t, "body", text) != NULL,
                       reply_to);
}

char *ct_graph_media_json(const char *to, const char *recipient_user_id, const char *kind,
                          const char *link, const char *caption, const char *filename,
                          const char *reply_to)
{
    cJSON *j, *m;

    if (kind == NULL || link == NULL)
        return NULL;
    j = start_body(to, recipient_user_id, kind);
    if (j == NULL)
        return NULL;
    m = cJSON_AddObjectToObject(j, kind);
    return finish_body(
        j,
        m != NULL && cJSON_AddStringToObject(m, "link", link) != NULL &&
            (caption == NULL || cJSON_AddStringToObject(m, "caption", caption) != NULL) &&
            (filename == NULL || cJSON_AddStringToObject(m, "filename", filename) != NULL),
        reply_to);
}

char *ct_graph_template_json(const char *to, const char *recipient_user_id, const char *name,
                             const char *language, const char *components_json)
{
    cJSON *j = NULL, *comps = NULL, *t, *lang;
    struct ct_err err;
    char *s = NULL;

    if (name == NULL || name[0] == '\0' || language == NULL || language[0] == '\0')
        return NULL;
    if (components_json != NULL) {
        comps = ct_json_parse_strict(components_json, strlen(components_json),
                                     CT_JSON_DEPTH_WEBHOOK, &err);
        if (!cJSON_IsArray(comps))
            goto out;
    }
    j = start_body(to, recipient_user_id, "template");
    if (j == NULL)
        goto out;
    t = cJSON_AddObjectToObject(j, "template");
    if (t == NULL || cJSON_AddStringToObject(t, "name", name) == NULL)
        goto out;
    lang = cJSON_AddObjectToObject(t, "language");
    if (lang == NULL || cJSON_AddStringToObject(lang, "code", language) == NULL)
        goto out;
    if (comps != NULL) {
        if (!cJSON_AddItemToObject(t, "components", comps))
            goto out;
        comps = NULL; /* t owns it now */
    }
    s = cJSON_PrintUnformatted(j);
out:
    cJSON_Delete(comps);
    cJSON_Delete(j);
    return s;
}

/* curl's body callback: keeps up to ANSWER_MAX bytes; past that, stops the transfer. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct exchange *x = userp;
    size_t n = size * nmemb;
    if (n > ANSWER_MAX - x->received) {
        x->too_large = true;
        return 0; /* fewer bytes than offered: curl ends with CURLE_WRITE_ERROR */
    }
    x->received += n;
    ct_buf_add(&x->body, data, n);
    return n;
}

/* curl's header callback, one line at a time, for every answer curl reads (a 100 Continue
 * included): keeps the last Retry-After value. */
static size_t on_header(char *line, size_t size, size_t nitems, void *userp)
{
    static const char name[] = "retry-after:";
    struct exchange *x = userp;
    size_t n = size * nitems, vlen;
    const char *v;

    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        x->retry_after[0] = '\0'; /* a new status line: the previous answer's headers are gone */
        return n;
    }
    if (n <= sizeof(name) - 1 || strncasecmp(line, name, sizeof(name) - 1) != 0)
        return n;
    v = line + sizeof(name) - 1;
    vlen = n - (sizeof(name) - 1);
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (vlen >= sizeof(x->retry_after))
        vlen = 0; /* no seconds value is that long: treat as absent */
    memcpy(x->retry_after, v, vlen);
    x->retry_after[vlen] = '\0';
    return n;
}

/* True when s is 1..PNID_MAX ASCII digits. */
static bool pnid_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        if (!isdigit((unsigned char)s[n]) || n >= PNID_MAX)
            return false;
    }
    return n > 0;
}

/* Fills out for a send that never reached Graph. */
static void refuse(struct ct_graph_result *out, enum ct_graph_outcome outcome, const char *title)
{
    memset(out, 0, sizeof(*out));
    out->outcome = outcome;
    copy_text(out->title, sizeof(out->title), title);
}

void ct_graph_send(struct ct_graph *g, const char *phone_number_id, const char *body_json,
                   struct ct_graph_result *out)
{
    struct exchange x;
    struct ct_buf url;
    char *u = NULL, *answer = NULL;
    size_t alen = 0;
    long status = 0;
    CURLcode rc;

    memset(&x, 0, sizeof(x));
    ct_buf_init(&x.body, ANSWER_MAX);
    ct_buf_init(&url, 0);
    if (g == NULL || body_json == NULL) {
        refuse(out, CT_GRAPH_FAILED, "no client or no request body");
        goto out;
    }
    /* the id lands in the URL path: digits only, so it cannot reach another Graph object */
    if (!pnid_ok(phone_number_id)) {
        refuse(out, CT_GRAPH_FAILED, "phone number id must be 1-64 digits");
        goto out;
    }
    ct_buf_addf(&url, "%s/%s/messages", g->base_url, phone_number_id);
    u = ct_buf_take(&url, NULL);
    if (u == NULL) {
        refuse(out, CT_GRAPH_RETRY, "out of memory");
        goto out;
    }
    rc = curl_easy_setopt(g->curl, CURLOPT_URL, u);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_POSTFIELDS, body_json);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body_json));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, on_body);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, &x);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_HEADERFUNCTION, on_header);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_HEADERDATA, &x);
    if (rc != CURLE_OK) {
        refuse(out, rc == CURLE_OUT_OF_MEMORY ? CT_GRAPH_RETRY : CT_GRAPH_FAILED,
               curl_easy_strerror(rc));
        goto out;
    }
    rc = curl_easy_perform(g->curl);
    if (rc != CURLE_OK && !x.too_large) {
        /* timeout, refused connection, DNS, TLS: Graph may or may not have the message, and
         * the caller retries with the same local id */
        refuse(out, CT_GRAPH_RETRY, curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &status);
    answer = ct_buf_take(&x.body, &alen);
    if (x.too_large || answer == NULL) {
        /* classified on the status alone; the title says why the body was not read */
        ct_graph_classify(status, NULL, 0, x.retry_after, out);
        snprintf(out->title, sizeof(out->title), "%s (HTTP %ld)",
                 x.too_large ? "answer over 1 MiB" : "out of memory reading the answer", status);
        goto out;
    }
    ct_graph_classify(status, answer, alen, x.retry_after, out);
out:
    /* the handle must not keep pointers into this frame or the caller's body */
    if (g != NULL && g->curl != NULL) {
        curl_easy_setopt(g->curl, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, NULL);
        curl_easy_setopt(g->curl, CURLOPT_HEADERDATA, NULL);
    }
    free(answer);
    free(u);
    ct_buf_free(&url);
    ct_buf_free(&x.body);
}

static size_t on_file(char *data, size_t size, size_t nmemb, void *userp);

/* A GET of url with the client's headers, its body kept up to max bytes (0: ANSWER_MAX).
 * Fills *status (0 when no answer) and x; false (out filled as RETRY) when curl failed. */
static bool get(struct ct_graph *g, const char *url, size_t max, struct exchange *x,
                long *status, struct ct_graph_result *out)
{
    CURLcode rc;
    *status = 0;
    rc = curl_easy_setopt(g->curl, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_HTTPGET, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, max > 0 ? on_file : on_body);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, x);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_HEADERFUNCTION, on_header);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(g->curl, CURLOPT_HEADERDATA, x);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(g->curl);
    curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(g->curl, CURLOPT_HEADERDATA, NULL);
    if (rc != CURLE_OK && !x->too_large) {
        refuse(out, CT_GRAPH_RETRY, curl_easy_strerror(rc));
        return false;
    }
    curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, status);
    return true;
}

/* Like on_body with the caller's limit (a file, not an answer): x->limit bytes at most. */
static size_t on_file(char *data, size_t size, size_t nmemb, void *userp)
{
    struct exchange *x = userp;
    size_t n = size * nmemb;
    if (n > x->limit - x->received) {
        x->too_large = true;
        return 0;
    }
    x->received += n;
    ct_buf_add(&x->body, data, n);
    return n;
}

void ct_graph_media_lookup(struct ct_graph *g, const char *media_id, struct ct_graph_media *media,
                           struct ct_graph_result *out)
{
    struct exchange x;
    char url[2200];
    char *answer = NULL;
    size_t alen = 0;
    long status;
    cJSON *j = NULL;

    memset(media, 0, sizeof(*media));
    memset(&x, 0, sizeof(x));
    ct_buf_init(&x.body, ANSWER_MAX);
    if (g == NULL || !pnid_ok(media_id)) {
        refuse(out, CT_GRAPH_FAILED, "media id must be 1-64 digits");
        goto out;
    }
    snprintf(url, sizeof(url), "%s/%s", g->base_url, media_id);
    if (!get(g, url, 0, &x, &status, out))
        goto out;
    answer = ct_buf_take(&x.body, &alen);
    ct_graph_classify(status, answer, alen, x.retry_after, out);
    j = answer != NULL ? cJSON_ParseWithLength(answer, alen) : NULL;
    const char *u = str_member(j, "url"), *mime = str_member(j, "mime_type");
    if (status >= 200 && status < 300) {
        /* a lookup answer has no message id: classify says FAILED; what matters is the url */
        bool ok = u != NULL && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) &&
                  strlen(u) < sizeof(media->url);
        memset(out, 0, sizeof(*out));
        out->http_status = status;
        out->outcome = ok ? CT_GRAPH_SENT : CT_GRAPH_FAILED;
        if (!ok)
            copy_text(out->title, sizeof(out->title), "media answer without a usable url");
        else
            snprintf(media->url, sizeof(media->url), "%s", u);
        if (mime != NULL)
            copy_text(media->mime_type, sizeof(media->mime_type), mime);
    }
out:
    cJSON_Delete(j);
    free(answer);
    ct_buf_free(&x.body);
}

void ct_graph_download(struct ct_graph *g, const char *url, size_t max, char **data, size_t *len,
                       struct ct_graph_result *out)
{
    struct exchange x;
    long status;
    char *body = NULL;
    size_t blen = 0;

    *data = NULL;
    *len = 0;
    memset(&x, 0, sizeof(x));
    ct_buf_init(&x.body, 0);
    x.limit = max;
    if (g == NULL || url == NULL || max == 0) {
        refuse(out, CT_GRAPH_FAILED, "no client, url or size limit");
        goto out;
    }
    if (!get(g, url, max, &x, &status, out))
        goto out;
    if (x.too_large) {
        refuse(out, CT_GRAPH_FAILED, "the file is larger than CASETRAIL_MEDIA_MAX");
        out->http_status = status;
        goto out;
    }
    body = ct_buf_take(&x.body, &blen);
    if (status >= 200 && status < 300 && body != NULL) {
        memset(out, 0, sizeof(*out));
        out->outcome = CT_GRAPH_SENT;
        out->http_status = status;
        *data = body;
        *len = blen;
        body = NULL;
    } else {
        ct_graph_classify(status, body, blen, x.retry_after, out);
        if (out->outcome == CT_GRAPH_SENT)
            out->outcome = CT_GRAPH_FAILED;
    }
out:
    free(body);
    ct_buf_free(&x.body);
}

void ct_graph_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void ct_graph_global_cleanup(void)
{
    curl_global_cleanup();
}
