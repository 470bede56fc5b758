/* log.h: JSON log lines on stderr, one per event. Never pass tokens, secrets, signatures or
 * customer text to these functions: log ids instead. */
#ifndef CASETRAIL_LOG_H
#define CASETRAIL_LOG_H

#include <stdbool.h>

enum ct_log_level { CT_LOG_DEBUG = 0, CT_LOG_INFO, CT_LOG_WARN, CT_LOG_ERROR };

/* Sets the lowest level written; messages below it are not even formatted. */
void ct_log_set_level(enum ct_log_level level);
/* Parses "debug|info|warn|error"; returns false on anything else. */
bool ct_log_parse_level(const char *s, enum ct_log_level *out);

void ct_log(enum ct_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ct_log_debug(...) ct_log(CT_LOG_DEBUG, __VA_ARGS__)
#define ct_log_info(...) ct_log(CT_LOG_INFO, __VA_ARGS__)
#define ct_log_warn(...) ct_log(CT_LOG_WARN, __VA_ARGS__)
#define ct_log_error(...) ct_log(CT_LOG_ERROR, __VA_ARGS__)

/* One access-log line. path must already be stripped of its query string; user may be NULL. */
void ct_log_access(const char *method, const char *path, int status, double ms, const char *user);

/* Writes now as ISO 8601 UTC with milliseconds and a Z into buf (at least 32 bytes). */
void ct_log_now_iso(char *buf, unsigned len);

#endif
