/* graph.h: the WhatsApp Cloud API (Graph) client: the only code that speaks HTTP out of
 * casetrail (libcurl). It builds the documented request bodies, sends them with a bounded
 * wait, and classifies every answer as sent, worth retrying, or failed for good. */
#ifndef CASETRAIL_GRAPH_H
#define CASETRAIL_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

/* One client per sender thread: it keeps its connection to Graph alive between sends.
 * Not thread-safe; make one per thread. */
struct ct_graph;

struct ct_graph_options {
    const char *base_url;   /* WHATSAPP_GRAPH_URL, no trailing slash, e.g. .../v21.0 */
    const char *token;      /* WHATSAPP_ACCESS_TOKEN (borrowed; never logged) */
    long connect_timeout_ms;
    long total_timeout_ms;  /* the whole exchange, answer included */
};

/* libcurl's process-wide set-up and tear-down: call once at start, before any thread uses a
 * client (it is not thread-safe), and once at exit. */
void ct_graph_global_init(void);
void ct_graph_global_cleanup(void);

/* Returns a client, or NULL when libcurl cannot start one or the options are unusable (no
 * http(s) base URL, a token with control bytes). A timeout of 0 means 5 s to connect and 15 s
 * in all. Free with ct_graph_free(). */
struct ct_graph *ct_graph_new(const struct ct_graph_options *opt);
void ct_graph_free(struct ct_graph *g);

enum ct_graph_outcome {
    CT_GRAPH_SENT = 0, /* Graph accepted the message: wamid is set (empty for a read mark's
                        * {"success": true}) */
    CT_GRAPH_RETRY,    /* may succeed later: network error, timeout, 429, 5xx, or a code the
                        * retry table names (1, 2, 4, 80007, 130429, 131000, 131016, 131056,
                        * 131057) */
    CT_GRAPH_FAILED    /* will not succeed as it is: any other answer (131047 outside the
                        * window, 131026, 131051, 131062, 100, 190 ...) */
};

struct ct_graph_result {
    enum ct_graph_outcome outcome;
    long http_status;       /* 0 when no HTTP answer arrived */
    int code;               /* Graph error.code; 0 when none */
    char title[240];        /* error title or message, or the curl error; "" when sent */
    char wamid[256];        /* messages[0].id when sent */
    char fbtrace_id[64];    /* support reference from the error, for logs */
    long retry_after_s;     /* the Retry-After header in seconds, 0 when absent */
};

/* The JSON body of a free-form text reply: to the phone number when known (Meta recommends
 * it), else to the BSUID in "recipient"; reply_to (may be NULL) becomes context.message_id.
 * Returns a newly allocated string (caller frees), NULL on OOM or when both to and
 * recipient_user_id are NULL. */
char *ct_graph_text_json(const char *to, const char *recipient_user_id, const char *text,
                         const char *reply_to);

/* The JSON body of an image or document (kind) the Graph API fetches from link; caption and
 * filename (documents only) may be NULL; reply_to as for text. Newly allocated (caller frees),
 * NULL on OOM or when there is no recipient. */
char *ct_graph_media_json(const char *to, const char *recipient_user_id, const char *kind,
                          const char *link, const char *caption, const char *filename,
                          const char *reply_to);

/* The JSON body of a template message; components_json (may be NULL) is the already-validated
 * "components" array as JSON text. Newly allocated (caller frees), NULL on OOM or bad input. */
char *ct_graph_template_json(const char *to, const char *recipient_user_id, const char *name,
                             const char *language, const char *components_json);

/* The JSON body that marks an inbound message (wamid) read, which also marks the messages
 * before it read. Graph answers {"success": true}: SENT with an empty wamid. Newly
 * allocated (caller frees), NULL on OOM. */
char *ct_graph_read_json(const char *wamid);

/* POST {base}/{phone_number_id}/messages with body_json and the bearer token; fills out. */
void ct_graph_send(struct ct_graph *g, const char *phone_number_id, const char *body_json,
                   struct ct_graph_result *out);

/* A customer's media as Graph describes it (step 1 of a download). */
struct ct_graph_media {
    char url[2048];         /* short-lived (about 5 minutes): fetch it at once */
    char mime_type[128];
};

/* GET {base}/{media_id}: out->outcome SENT means found and media filled; a 404 or other
 * refusal is FAILED, 429/5xx/network RETRY. media_id must be 1-64 digits. */
void ct_graph_media_lookup(struct ct_graph *g, const char *media_id, struct ct_graph_media *media,
                           struct ct_graph_result *out);

/* GET url with the bearer token (step 2), at most max bytes: on SENT, *data (malloc'd; caller
 * frees) and *len hold the file. Bigger than max is FAILED ("larger than ..."). */
void ct_graph_download(struct ct_graph *g, const char *url, size_t max, char **data, size_t *len,
                       struct ct_graph_result *out);

/* Classifies an HTTP answer: status (0: none arrived), its body (may be NULL) and the
 * Retry-After header value (may be NULL). Pure: unit-tested without a socket. */
void ct_graph_classify(long http_status, const char *body, size_t len, const char *retry_after,
                       struct ct_graph_result *out);

/* Whether a Graph error code is worth retrying (the retry table above). */
bool ct_graph_code_retryable(int code);

#endif
