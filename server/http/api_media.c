/* api_media.c: GET /api/media/{message_id}: a customer's stored photo, voice note or document.
 * The bytes are the customer's, so they go out as a download, never as a page. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <civetweb.h>

#include "api.h"
#include "casetrail/media.h"
#include "casetrail/store.h"

struct media_job {
    long long message_id;
    bool found;
    char sha256[65];
    char mime[128];
};

static ct_rc media_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct media_job *j = arg;
    return ct_store_media_get(tx, j->message_id, &j->found, j->sha256, j->mime, err);
}

/* A mime type as the webhook gave it may be anything; only a plain type/subtype is echoed, and
 * never one a browser would run (HTML, SVG, XML, scripts). */
static const char *safe_mime(const char *m)
{
    size_t slash = 0;
    if (strstr(m, "html") != NULL || strstr(m, "xml") != NULL || strstr(m, "script") != NULL)
        return "application/octet-stream";
    for (size_t i = 0; m[i] != '\0'; i++) {
        char c = m[i];
        if (c == '/' && slash == 0 && i > 0)
            slash = i;
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '+' ||
                   c == '-'))
            return "application/octet-stream";
    }
    return slash > 0 && m[slash + 1] != '\0' ? m : "application/octet-stream";
}

static void stream(struct ct_req *req, int fd, long long size, const struct media_job *j)
{
    char extra[400], buf[65536];
    snprintf(extra, sizeof(extra),
             "Content-Disposition: attachment; filename=\"message-%lld\"\r\n"
             "Content-Security-Policy: sandbox\r\nX-Content-SHA256: %s\r\n",
             j->message_id, j->sha256);
    ct_http_write_head(req->conn, 200, safe_mime(j->mime), size, extra);
    req->status = 200;
    if (strcmp(req->method, "HEAD") == 0)
        return;
    for (long long sent = 0; sent < size;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0 || mg_write(req->conn, buf, (size_t)n) <= 0)
            return; /* the client sees a short body against Content-Length */
        sent += n;
    }
}

void ct_api_media_get(struct ct_req *req)
{
    struct media_job j;
    struct ct_err err;
    char path[1024];
    struct stat st;
    int fd;

    memset(&j, 0, sizeof(j));
    if (!ct_http_path_id(req, "message", &j.message_id))
        return;
    if (ct_store_with_conn(req->srv->pool, media_tx, &j, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    if (!j.found) {
        ct_http_fail(req, CT_E_NOT_FOUND, "media_not_stored",
                     "message %lld has no stored media (none, still pending, or failed: the "
                     "ticket's timeline says which)", j.message_id);
        return;
    }
    fd = -1;
    if (ct_media_path(req->srv->cfg.media_dir, j.sha256, path, sizeof(path)))
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ct_http_fail(req, CT_E_INTERNAL, "media_missing",
                     "the stored media of message %lld is missing from CASETRAIL_MEDIA_DIR",
                     j.message_id);
        return;
    }
    if (fstat(fd, &st) == 0)
        stream(req, fd, (long long)st.st_size, &j);
    else
        ct_http_fail(req, CT_E_INTERNAL, "media_missing", "could not read the stored media");
    close(fd);
}
