/* log.c: structured (JSON) logging to stderr, one write per line so threads do not interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "casetrail/log.h"
#include "casetrail/text.h"

/* Set once at start, before threads exist; read-only afterwards. */
static enum ct_log_level min_level = CT_LOG_INFO;

void ct_log_set_level(enum ct_log_level level)
{
    min_level = level;
}

bool ct_log_parse_level(const char *s, enum ct_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum ct_log_level)i;
            return true;
        }
    }
    return false;
}

void ct_log_now_iso(char *buf, unsigned len)
{
    struct timeval tv;
    struct tm tm;
    char date[32];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%.24s.%03dZ", date, (int)(tv.tv_usec / 1000) % 1000);
}

/* Appends s to out as JSON string content (no quotes); always NUL-terminates. */
static size_t json_escape(char *out, size_t cap, size_t pos, const char *s)
{
    for (; *s != '\0' && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        size_t seq = ct_utf8_seq_len(s);
        if (c >= 0x80) {
            /* copy a whole valid sequence, or replace a stray byte with U+FFFD */
            if (seq == 0) {
                pos += (size_t)snprintf(out + pos, cap - pos, "\\ufffd");
            } else if (pos + seq + 7 < cap) {
                memcpy(out + pos, s, seq);
                pos += seq;
                s += seq - 1;
            } else {
                break;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    out[pos] = '\0';
    return pos;
}

/* Appends s when it fits whole (leaving room for the closing brace); pos never passes cap. */
static size_t append(char *line, size_t cap, size_t pos, const char *s)
{
    size_t n = strlen(s);
    if (pos + n + 3 > cap)
        return pos;
    memcpy(line + pos, s, n + 1);
    return pos + n;
}

static void write_line(char *line, size_t pos, size_t cap)
{
    if (pos + 2 >= cap)
        pos = cap - 3;
    line[pos++] = '}';
    line[pos++] = '\n';
    /* one write(2) per line: concurrent workers never interleave inside a line */
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}

static const char *level_name(enum ct_log_level level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return names[level];
}

void ct_log(enum ct_log_level level, const char *fmt, ...)
{
    char msg[1024];
    char line[2048];
    char ts[40];
    size_t pos;
    va_list ap;

    if (level < min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ct_log_now_iso(ts, sizeof(ts));
    pos = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                           level_name(level));
    pos = json_escape(line, sizeof(line), pos, msg);
    line[pos++] = '"';
    write_line(line, pos, sizeof(line));
}

void ct_log_access(const char *method, const char *path, int status, double ms, const char *user)
{
    char line[2048];
    char ts[40];
    size_t pos;

    if (min_level > CT_LOG_INFO)
        return;
    ct_log_now_iso(ts, sizeof(ts));
    pos =
        (size_t)snprintf(line, sizeof(line),
                         "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\",\"method\":\"", ts);
    pos = json_escape(line, sizeof(line), pos, method);
    pos = append(line, sizeof(line), pos, "\",\"path\":\"");
    pos = json_escape(line, sizeof(line), pos, path);
    char tail[64];
    snprintf(tail, sizeof(tail), "\",\"status\":%d,\"ms\":%.3f", status, ms);
    pos = append(line, sizeof(line), pos, tail);
    if (user != NULL) {
        pos = append(line, sizeof(line), pos, ",\"user\":\"");
        pos = json_escape(line, sizeof(line), pos, user);
        pos = append(line, sizeof(line), pos, "\"");
    }
    write_line(line, pos, sizeof(line));
}
